#!/usr/bin/env node
// `npm run prebuilds` (not `prebuild`: npm would run a script of that name before every `npm run build`):
// builds the noise addon for linux-x64 and linux-arm64 into prebuilds/ (committed, shipped
// in the npm package), arm64 by cross-compiling with Debian's g++-aarch64-linux-gnu. Each build runs in a
// scratch copy of the sources, so the tree's own build/ (and anyone's tests using it) is left alone.
// prebuilds/manifest.json records a hash of the sources, the compilers and each file's SHA-256; a test fails
// when the sources change and the prebuilds were not regenerated.
//
//   node scripts/prebuild.mjs [--arch x64,arm64] [--check]
//
// --check rebuilds and compares with the committed files instead of writing them (same compiler: same bits).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGypCommands, prebuildRelativePath, root, sourceFiles, sourcesHash } from './native-addon.mjs';

/** Compilers per target architecture on an x86-64 or arm64 Debian host; the host's own arch uses plain g++. */
const TOOLCHAINS = {
  x64: { prefix: 'x86_64-linux-gnu-' },
  arm64: { prefix: 'aarch64-linux-gnu-' },
};

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'x64,arm64' }, check: { type: 'boolean', default: false } } });
const arches = values.arch.split(',').filter(Boolean);
for (const arch of arches) {
  if (!(arch in TOOLCHAINS)) fail(`--arch: unknown architecture ${JSON.stringify(arch)} (expected x64 or arm64)`);
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

function run(command, args, options) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) return result.error.message;
  return result.status === 0 ? undefined : `${command} exited with status ${result.status}`;
}

function output(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n')[0].trim() : undefined;
}

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The compiler for `arch`: the cross prefix when it is installed, else plain g++ when the host is that arch. */
function compilerFor(arch) {
  const prefixed = `${TOOLCHAINS[arch].prefix}g++`;
  if (output(prefixed, ['--version'])) return TOOLCHAINS[arch].prefix;
  if (process.arch === arch && output('g++', ['--version'])) return '';
  fail(`no C++ compiler for ${arch}: install ${prefixed} (Debian: apt-get install g++-${TOOLCHAINS[arch].prefix.slice(0, -1).replace(/_/g, '-')})`);
}

function buildOne(arch) {
  const prefix = compilerFor(arch);
  const scratch = mkdtempSync(join(tmpdir(), 'mezo-prebuild-'));
  try {
    for (const file of sourceFiles()) {
      mkdirSync(join(scratch, file, '..'), { recursive: true });
      copyFileSync(join(root, file), join(scratch, file));
    }
    // binding.gyp asks node-addon-api for its include directory from the build's own directory.
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
    const env = {
      ...process.env,
      CC: `${prefix}gcc`,
      CXX: `${prefix}g++`,
      LINK: `${prefix}g++`,
      AR: `${prefix}ar`,
    };
    // N-API headers do not depend on the target: the running Node.js's own headers serve both arches (and
    // spare node-gyp a download); without them node-gyp fetches the headers as usual.
    const nodeRoot = join(dirname(process.execPath), '..');
    const nodedir = existsSync(join(nodeRoot, 'include/node/node_api.h')) ? [`--nodedir=${nodeRoot}`] : [];
    let failure = 'node-gyp not found';
    for (const [command, args] of nodeGypCommands()) {
      failure = run(command, [...args, 'rebuild', `--arch=${arch}`, ...nodedir], { cwd: scratch, env });
      if (failure === undefined || !failure.includes('ENOENT')) break;
    }
    if (failure !== undefined) fail(`building for ${arch}: ${failure}`);
    const built = join(scratch, 'build/Release/mezo_noise.node');
    // The symbol table is not needed to load the addon; without it the file is a third of the size.
    const stripError = run(`${prefix}strip`, ['--strip-unneeded', built]);
    if (stripError !== undefined) fail(`stripping the ${arch} addon: ${stripError}`);
    return { file: readFileSync(built), compiler: output(`${prefix}g++`, ['--version']) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const manifestPath = join(root, 'prebuilds/manifest.json');
const previous = (() => {
  try {
    return JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch {
    return { files: {} };
  }
})();
const manifest = {
  addon: 'mezo_noise (shared/noise/native), N-API 8',
  sources: sourcesHash(),
  nodeAddonApi: JSON.parse(readFileSync(join(root, 'node_modules/node-addon-api/package.json'), 'utf8')).version,
  files: { ...previous.files },
};
let mismatches = 0;
for (const arch of arches) {
  const { file, compiler } = buildOne(arch);
  const relative = prebuildRelativePath('linux', arch);
  const digest = createHash('sha256').update(file).digest('hex');
  if (values.check) {
    const committed = (() => {
      try {
        return sha256(join(root, relative));
      } catch {
        return 'missing';
      }
    })();
    const same = committed === digest;
    if (!same) mismatches++;
    console.log(`${relative}: ${same ? 'same bits' : `DIFFERS (committed ${committed.slice(0, 16)}, rebuilt ${digest.slice(0, 16)})`}`);
    continue;
  }
  mkdirSync(join(root, relative, '..'), { recursive: true });
  writeFileSync(join(root, relative), file);
  manifest.files[relative.replace(/^prebuilds\//, '')] = { sha256: digest, bytes: file.length, compiler };
  console.log(`${relative}: ${file.length} bytes, sha256 ${digest}`);
}
if (values.check) {
  if (manifest.sources !== previous.sources) {
    console.log('prebuilds/manifest.json: built from other sources than the tree has now');
    mismatches++;
  }
  process.exit(mismatches === 0 ? 0 : 1);
}
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
