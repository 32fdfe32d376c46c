/**
 * The WebAssembly noise kernel (shared/noise/wasm): built from the sources in the tree (its manifest), the same
 * Philox known answers and golden vectors as the other kernels, bit-identical to the TypeScript kernel over more
 * than a million elements for both distributions (perturb and a fused accumulate, unaligned ranges, offsets past
 * 2^32 blocks), its SIMD Gaussian path equal to its portable one, and the low-rank extension handed to the TypeScript kernel.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { NoiseEngine, PackedEntries } from '../../../shared/noise/engine.js';
import { jsKernel } from '../../../shared/noise/js-kernel.js';
import { DIST_GAUSSIAN, DIST_RADEMACHER } from '../../../shared/noise/kernel.js';
import { WASM_ENTRY_CAPACITY, type WasmNoiseKernel } from '../../../shared/noise/wasm-kernel.js';
import { loadWasmKernel, wasmKernelPath } from '../../../shared/noise/wasm-kernel-node.js';
import { bitsOf, expectSameBits } from '../../helpers/bits.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const golden = JSON.parse(readFileSync(join(ROOT, 'test/unit/noise/golden-vectors.json'), 'utf8')) as {
  count: number;
  vectors: Array<{ distribution: 'gaussian' | 'rademacher'; seed: string; offset: number; bits: string[] }>;
};
const manifest = JSON.parse(readFileSync(join(ROOT, 'shared/noise/wasm/manifest.json'), 'utf8')) as {
  sources: string;
  sha256: string;
  bytes: number;
};
const hex = (words: Uint32Array): string[] => Array.from(words, (w) => w.toString(16).padStart(8, '0'));

/** Varied non-zero contents from an LCG, so that the add itself is exercised. */
function randomSlab(length: number, seed: number): Float32Array {
  const slab = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    slab[i] = (state / 2 ** 32 - 0.5) * 0.08;
  }
  return slab;
}

let kernel: WasmNoiseKernel;
let wasm: NoiseEngine;
const js = new NoiseEngine(jsKernel);

beforeAll(async () => {
  kernel = await loadWasmKernel();
  wasm = new NoiseEngine(kernel);
});

describe('committed noise-kernel.wasm', () => {
  it('was built from the sources in the tree (else: npm run build:wasm)', () => {
    const run = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import('./scripts/build-wasm-noise.mjs').then((m) => console.log(m.wasmSourcesHash()))"],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(manifest.sources).toBe(run.stdout.trim());
    const bytes = readFileSync(wasmKernelPath());
    expect(bytes.length).toBe(manifest.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.sha256);
  });
});

describe('wasm noise kernel', () => {
  it('is a wasm kernel with SIMD', () => {
    expect(wasm.kind).toBe('wasm');
    expect(kernel.simd).toBe('simd128');
  });

  it('reproduces the three Philox4x32-10 known answers (Random123)', () => {
    expect(hex(wasm.philox([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const ones = 0xffffffff;
    expect(hex(wasm.philox([ones, ones, ones, ones], [ones, ones]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(wasm.philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual([
      'd16cfe09',
      '94fdcceb',
      '5001e420',
      '24126ea1',
    ]);
  });

  it(`matches all ${golden.vectors.length} committed golden vectors bit for bit`, () => {
    expect(golden.vectors.length).toBeGreaterThanOrEqual(40);
    for (const v of golden.vectors) {
      const z = new Float32Array(golden.count);
      wasm.sample(z, v.seed, { offset: v.offset, distribution: v.distribution });
      expect(hex(bitsOf(z)), `${v.distribution} seed ${v.seed} offset ${v.offset}`).toEqual(v.bits);
    }
  });

  for (const distribution of ['gaussian', 'rademacher'] as const) {
    it(`${distribution}: perturb equals the TypeScript kernel on 1.2e6 elements, over several chunks and an odd range`, () => {
      const length = 1_200_003;
      const a = randomSlab(length, 7);
      const b = a.slice();
      // An odd start and end and an offset that is not a multiple of any block size: ragged ends in every path.
      const options = { offset: 123_457, start: 5, end: length - 2, distribution };
      wasm.perturb(a, 0x1234_5678_9abcn, 1e-3, options);
      js.perturb(b, 0x1234_5678_9abcn, 1e-3, options);
      expectSameBits(a, b);
      expect(a[4]).toBe(randomSlab(5, 7)[4]);
    });

    it(`${distribution}: accumulate of 5 entries equals the TypeScript kernel on 1.1e6 elements`, () => {
      const entries = PackedEntries.from(Array.from({ length: 5 }, (_, k) => ({ seed: BigInt(900 + 31 * k), coeff: (k - 2) * 3e-4 })));
      const a = randomSlab(1_100_000, 11);
      const b = a.slice();
      wasm.accumulate(a, entries, { offset: 2 ** 33 + 3, distribution });
      js.accumulate(b, entries, { offset: 2 ** 33 + 3, distribution });
      expectSameBits(a, b);
    });
  }

  it('gaussian: blocks whose index passes 2^32 (the counter high word carries) equal the TypeScript kernel', () => {
    // Global index 4·2^32 − 40 is 10 blocks before block 2^32: the SIMD path's lanes straddle the carry.
    const offset = 4 * 2 ** 32 - 40;
    const a = new Float32Array(1000);
    const b = new Float32Array(1000);
    wasm.sample(a, 99n, { offset });
    js.sample(b, 99n, { offset });
    expectSameBits(a, b);
  });

  it('its SIMD Gaussian path equals its portable C++ path', () => {
    const keys = new Uint32Array([0xdeadbeef, 0x01234567, 42, 7]);
    const coeffs = new Float32Array([1e-3, -2e-3]);
    for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
      const a = randomSlab(300_001, 3);
      const b = a.slice();
      kernel.accumulate(a, keys, coeffs, 17, 1, 300_000, distribution);
      kernel.accumulatePortable(b, keys, coeffs, 17, 1, 300_000, distribution);
      expectSameBits(a, b);
    }
  });

  it('leaves the slab outside [start, end) untouched and a zero-length range does nothing', () => {
    const a = randomSlab(200_000, 5);
    const before = a.slice();
    wasm.perturb(a, 1n, 1, { start: 70_000, end: 70_000 });
    expectSameBits(a, before);
    wasm.perturb(a, 1n, 1, { start: 65_530, end: 65_545 });
    expectSameBits(a.subarray(0, 65_530), before.subarray(0, 65_530));
    expectSameBits(a.subarray(65_545), before.subarray(65_545));
    expect(a[65_540]).not.toBe(before[65_540]);
  });

  it('hands the low-rank distribution to the TypeScript kernel (same bits)', () => {
    const lowRank = { rank: 2, matrices: [{ offset: 10, rows: 7, cols: 9 }] };
    const a = randomSlab(200, 17);
    const b = a.slice();
    wasm.perturb(a, 5n, 1e-2, { distribution: 'lowrank', lowRank });
    js.perturb(b, 5n, 1e-2, { distribution: 'lowrank', lowRank });
    expectSameBits(a, b);
    expect(a[20]).not.toBe(randomSlab(200, 17)[20]);
  });

  it('applies more entries than its entry area holds (in batches) and still matches', () => {
    const entries = PackedEntries.from(Array.from({ length: WASM_ENTRY_CAPACITY + 100 }, (_, k) => ({ seed: k, coeff: 1e-5 })));
    const a = randomSlab(500, 13);
    const b = a.slice();
    wasm.accumulate(a, entries);
    js.accumulate(b, entries);
    expectSameBits(a, b);
  });
});
