#!/usr/bin/env node
// Install step of the native noise addon (`npm install`/`npm ci`). When the package ships a prebuilt binary for
// this platform (prebuilds/, see scripts/prebuild.mjs) and it loads, nothing is built. Otherwise node-gyp builds
// it; a device without a C++ toolchain still installs, and the TypeScript kernel (same bits, slower) takes over
// at run time. MEZO_NATIVE_BUILD=required always builds from source and turns a failed build into a failed
// install (CI uses it); MEZO_NATIVE_BUILD=skip does not try at all.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { nodeGypCommands, prebuildForThisPlatform, root } from './native-addon.mjs';

const mode = process.env.MEZO_NATIVE_BUILD ?? 'auto';
if (!['auto', 'required', 'skip'].includes(mode)) {
  console.error(`MEZO_NATIVE_BUILD must be 'auto', 'required' or 'skip', got ${JSON.stringify(mode)}`);
  process.exit(1);
}
if (mode === 'skip') process.exit(0);

// A prebuilt addon for this platform that loads needs no compiler: the run-time loader picks it first. `required`
// still builds from source, so CI proves the build works.
const prebuilt = prebuildForThisPlatform();
if (mode === 'auto' && prebuilt !== undefined) {
  try {
    createRequire(import.meta.url)(prebuilt).simd();
    console.log(`mezo-fleet: using the prebuilt noise addon ${relative(root, prebuilt)}; nothing to build`);
    process.exit(0);
  } catch (err) {
    console.warn(`mezo-fleet: the prebuilt noise addon does not load here (${String(err).split('\n')[0]}); building from source`);
  }
}

const candidates = nodeGypCommands().map(([command, args]) => [command, [...args, 'rebuild']]);

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
