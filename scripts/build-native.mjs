#!/usr/bin/env node
// Builds the native noise addon with node-gyp during `npm install`/`npm ci`. A device without a C++ toolchain
// still installs: the TypeScript kernel (same bits, slower) takes over at run time. MEZO_NATIVE_BUILD=required
// turns a failed build into a failed install (CI uses it); MEZO_NATIVE_BUILD=skip does not try at all.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.env.MEZO_NATIVE_BUILD ?? 'auto';
if (!['auto', 'required', 'skip'].includes(mode)) {
  console.error(`MEZO_NATIVE_BUILD must be 'auto', 'required' or 'skip', got ${JSON.stringify(mode)}`);
  process.exit(1);
}
if (mode === 'skip') process.exit(0);

// npm puts its bundled node-gyp on PATH for lifecycle scripts; outside npm, fall back to the one npm ships.
const candidates = [['node-gyp', ['rebuild']]];
const npmGyp = process.env.npm_execpath
  ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  : undefined;
if (npmGyp && existsSync(npmGyp)) candidates.push([process.execPath, [npmGyp, 'rebuild']]);

let failure = 'node-gyp not found';
for (const [command, args] of candidates) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) {
    failure = result.error.message;
    continue;
  }
  if (result.status === 0) process.exit(0);
  failure = `node-gyp exited with status ${result.status}`;
  break;
}
const message = `mezo-fleet: native noise addon not built (${failure}); the TypeScript kernel will be used (same bits, slower)`;
if (mode === 'required') {
  console.error(message);
  process.exit(1);
}
console.warn(message);
