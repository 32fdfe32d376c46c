#!/usr/bin/env node
// `npm run build:wasm`: compiles the noise kernel to WebAssembly (shared/noise/wasm/noise-kernel.wasm, committed
// and shipped, so neither installs nor CI need clang) with Debian's clang and lld:
//   apt-get install -y clang lld
// The portable C++ kernel is compiled unchanged, with the same float rules as the addon (binding.gyp): no fused
// multiply-add, no fast-math, no libm, and no C or C++ library at all (-nostdlib; the few std names it uses come
// from shared/noise/wasm/freestanding). shared/noise/wasm/manifest.json records a hash of the sources, the
// compiler and the file's SHA-256; a test fails when the sources change and the file was not rebuilt.
//
//   node scripts/build-wasm-noise.mjs [--check]
//
// --check compiles into a scratch file and compares it with the committed one instead of writing it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT = 'shared/noise/wasm/noise-kernel.wasm';
const MANIFEST = 'shared/noise/wasm/manifest.json';
const UNITS = ['shared/noise/wasm/noise-kernel-wasm.cc', 'shared/noise/native/noise-kernel-generic.cc'];

const FLAGS = [
  '--target=wasm32',
  '-std=c++17',
  '-O3',
  // 128-bit SIMD: every current browser engine and Node.js ≥ 16 run it.
  '-msimd128',
  '-ffreestanding',
  '-nostdlib',
  '-nostdinc++',
  '-isystem',
  'shared/noise/wasm/freestanding',
  '-fno-exceptions',
  '-fno-rtti',
  '-fno-fast-math',
  '-ffp-contract=off',
  '-fno-math-errno',
  '-Wall',
  '-Wextra',
  '-Werror',
  // A library module: no entry point; __heap_base tells the adapter where its own memory may start.
  '-Wl,--no-entry',
  '-Wl,--export=__heap_base',
  '-Wl,--strip-all',
];

/** The files that decide the module's bits, relative to the root, in a fixed order (this script included). */
export function wasmSourceFiles() {
  const freestanding = readdirSync(join(root, 'shared/noise/wasm/freestanding'))
    .sort()
    .map((name) => `shared/noise/wasm/freestanding/${name}`);
  return ['scripts/build-wasm-noise.mjs', ...UNITS, 'shared/noise/native/noise-kernel.h', 'shared/noise/native/philox.h', ...freestanding];
}

export function wasmSourcesHash() {
  const hash = createHash('sha256');
  for (const file of wasmSourceFiles()) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0');
  return hash.digest('hex');
}

function fail(message) {
  console.error(`build-wasm-noise: ${message}`);
  process.exit(1);
}

function build(outputPath) {
  const version = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) fail('clang++ not found (Debian: apt-get install -y clang lld)');
  const result = spawnSync('clang++', [...FLAGS, '-o', outputPath, ...UNITS], { cwd: root, stdio: 'inherit' });
  if (result.error) fail(result.error.message);
  if (result.status !== 0) fail(`clang++ exited with status ${result.status} (wasm-ld comes with lld: apt-get install -y lld)`);
  return version.stdout.split('\n')[0].trim();
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const scratch = mkdtempSync(join(tmpdir(), 'mezo-wasm-'));
  try {
    const out = join(scratch, 'noise-kernel.wasm');
    const compiler = build(out);
    const bytes = readFileSync(out);
    if (values.check) {
      const committed = readFileSync(join(root, OUTPUT));
      if (!committed.equals(bytes)) fail(`${OUTPUT} differs from a fresh build (run: npm run build:wasm)`);
      console.log(`${OUTPUT}: identical to a fresh build (${compiler})`);
    } else {
      writeFileSync(join(root, OUTPUT), bytes);
      const manifest = { module: OUTPUT, sources: wasmSourcesHash(), sha256: sha256(bytes), bytes: bytes.length, compiler };
      writeFileSync(join(root, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      console.log(`${OUTPUT}: ${bytes.length} bytes, sha256 ${manifest.sha256} (${compiler})`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
