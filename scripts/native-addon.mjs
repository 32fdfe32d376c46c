// What the install script (build-native.mjs) and the prebuild script (prebuild.mjs) share: where a prebuilt
// noise addon lives in the package and how to start node-gyp. shared/noise/native-binding.ts, which loads the
// addon at run time, uses the same layout.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * prebuildify's layout, prebuilds/<platform>-<arch>/<name>.<tags>.node, so node-gyp-build and other tools that
 * know it read our files too: `napi` because the addon uses only N-API (one binary serves every Node.js release
 * from 18 on), `glibc` because it links against glibc (a musl system needs a build from source).
 */
export function prebuildRelativePath(platform, arch) {
  return join('prebuilds', `${platform}-${arch}`, 'mezo_noise.napi.glibc.node');
}

/** The prebuilt addon for this platform in this package, or undefined when none is shipped for it. */
export function prebuildForThisPlatform() {
  if (process.platform !== 'linux') return undefined;
  const path = join(root, prebuildRelativePath(process.platform, process.arch));
  return existsSync(path) ? path : undefined;
}

/**
 * The ways to run node-gyp, in order: npm puts its bundled node-gyp on PATH for lifecycle scripts; outside npm
 * (or when PATH lacks it), the one inside the npm that runs us, then the one next to this Node.js.
 */
export function nodeGypCommands() {
  const commands = [['node-gyp', []]];
  const npmDirs = [];
  if (process.env.npm_execpath) npmDirs.push(join(dirname(process.env.npm_execpath), '..'));
  npmDirs.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'));
  for (const dir of npmDirs) {
    const script = join(dir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(script)) commands.push([process.execPath, [script]]);
  }
  return commands;
}

/** The files that decide the addon's bits, relative to the root, in a fixed order. */
export function sourceFiles() {
  const native = readdirSync(join(root, 'shared/noise/native'))
    .filter((name) => /\.(cc|h)$/.test(name))
    .sort()
    .map((name) => `shared/noise/native/${name}`);
  return ['binding.gyp', ...native];
}

/** SHA-256 over those files' names and contents: prebuilds/manifest.json records it for the build it holds. */
export function sourcesHash() {
  const hash = createHash('sha256');
  for (const file of sourceFiles()) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0');
  return hash.digest('hex');
}
