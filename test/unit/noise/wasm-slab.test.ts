/**
 * Slabs inside the WebAssembly noise kernel's memory (allocateSlab): the kernel works on them in place, with no
 * copy, and must give exactly the bits of its copying path and of the TypeScript kernel — over more than a
 * million elements, for both distributions, for perturb and for a fused accumulate (the backend's apply) with
 * varied coefficients, at offsets and from unaligned starts, on subarrays, across a memory grow, and with more
 * entries than the module's entry area holds. Misuse is refused with a reason: a slab detached by a grow, a view
 * of another kernel's memory, a view of the kernel's scratch, a bad length.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { NoiseEngine, PackedEntries } from '../../../shared/noise/engine.js';
import { jsKernel } from '../../../shared/noise/js-kernel.js';
import { DIST_GAUSSIAN, DIST_RADEMACHER } from '../../../shared/noise/kernel.js';
import { WASM_ENTRY_CAPACITY, type WasmNoiseKernel } from '../../../shared/noise/wasm-kernel.js';
import { loadWasmKernel } from '../../../shared/noise/wasm-kernel-node.js';
import { expectSameBits } from '../../helpers/bits.js';

/** Varied non-zero contents from an LCG, so that the add itself is exercised. */
function fill(slab: Float32Array, seed: number): Float32Array {
  let state = seed >>> 0;
  for (let i = 0; i < slab.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    slab[i] = (state / 2 ** 32 - 0.5) * 0.08;
  }
  return slab;
}

/** The same contents in three places: a slab in the kernel's memory, a plain array (copied through), and one for TypeScript. */
function triple(kernel: WasmNoiseKernel, length: number, seed: number): { inModule: Float32Array; plain: Float32Array; ts: Float32Array } {
  const inModule = fill(kernel.allocateSlab(length), seed);
  return { inModule, plain: inModule.slice(), ts: inModule.slice() };
}

const js = new NoiseEngine(jsKernel);
let kernel: WasmNoiseKernel;
let wasm: NoiseEngine;

beforeAll(async () => {
  kernel = await loadWasmKernel();
  wasm = new NoiseEngine(kernel);
});

describe('allocateSlab', () => {
  it('hands out a zeroed, 64-byte aligned view of the module memory that the kernel works on in place', () => {
    const slab = kernel.allocateSlab(1001);
    expect(slab).toBeInstanceOf(Float32Array);
    expect(slab.length).toBe(1001);
    expect(slab.buffer).toBe(kernel.exports.memory.buffer);
    expect(slab.byteOffset % 64).toBe(0);
    expect(slab.every((v) => v === 0)).toBe(true);
    expect(kernel.inPlace(slab)).toBe(true);
    expect(kernel.inPlace(slab.subarray(3, 500))).toBe(true);
    expect(kernel.inPlace(new Float32Array(1001))).toBe(false);
    // Not overlapping the previous slab: the next one starts past its end.
    const end = slab.byteOffset + slab.byteLength;
    const next = kernel.allocateSlab(5);
    expect(next.byteOffset).toBeGreaterThanOrEqual(end);
    expect(next.byteOffset % 64).toBe(0);
  });

  it('refuses lengths that are not positive integers, and slabs that cannot fit in 4 GiB, naming length', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => kernel.allocateSlab(bad)).toThrow(/allocateSlab: length must be a positive integer/);
    }
    expect(() => kernel.allocateSlab(2 ** 30)).toThrow(/allocateSlab: 1073741824 floats do not fit in the noise kernel's 4 GiB/);
  });
});

describe('a slab in the module memory gives the bits of the copying path and of the TypeScript kernel', () => {
  for (const distribution of ['gaussian', 'rademacher'] as const) {
    it(`${distribution}: perturb with several coefficients on 1.2e6 elements, an unaligned start, an offset past 2^33`, () => {
      const length = 1_200_007;
      const { inModule, plain, ts } = triple(kernel, length, 7);
      // A start that is no multiple of any block, an end short of the slab, and an offset at an odd lane.
      const options = { offset: 2 ** 33 + 13, start: 3, end: length - 5, distribution };
      for (const [seed, scale] of [[0x1234_5678_9abcn, 1e-3], [77n, -2.5e-3], [5n, 0.5]] as const) {
        wasm.perturb(inModule, seed, scale, options);
        wasm.perturb(plain, seed, scale, options);
        js.perturb(ts, seed, scale, options);
      }
      expect(kernel.inPlace(inModule)).toBe(true);
      expectSameBits(inModule, plain, 'in place vs copied');
      expectSameBits(inModule, ts, 'in place vs TypeScript');
      expect(inModule[2]).toBe(fill(new Float32Array(3), 7)[2]);
    });

    it(`${distribution}: accumulate (apply) of 7 entries with mixed coefficients on 1.1e6 elements, on a subarray starting at an odd element`, () => {
      const { inModule, plain, ts } = triple(kernel, 1_100_013, 11);
      const coeffs = [3e-4, -7e-4, 0, 1.25e-2, -1e-6, 2e-3, -0.1];
      const entries = PackedEntries.from(coeffs.map((coeff, k) => ({ seed: BigInt(900 + 31 * k), coeff })));
      // A view whose element 0 is not 64-byte aligned: the module loads and stores it unaligned, in place.
      const view = (a: Float32Array): Float32Array => a.subarray(5, a.length - 2);
      expect(kernel.inPlace(view(inModule))).toBe(true);
      const options = { offset: 123_457, distribution };
      wasm.accumulate(view(inModule), entries, options);
      wasm.accumulate(view(plain), entries, options);
      js.accumulate(view(ts), entries, options);
      expectSameBits(inModule, plain, 'in place vs copied');
      expectSameBits(inModule, ts, 'in place vs TypeScript');
    });
  }

  it(`applies more entries than the entry area holds (${WASM_ENTRY_CAPACITY}) in batches, without growing the memory`, () => {
    const { inModule, plain, ts } = triple(kernel, 3001, 13);
    const buffer = kernel.exports.memory.buffer;
    const entries = PackedEntries.from(
      Array.from({ length: WASM_ENTRY_CAPACITY + 905 }, (_, k) => ({ seed: k, coeff: ((k % 7) - 3) * 1e-5 })),
    );
    for (const distribution of ['gaussian', 'rademacher'] as const) {
      wasm.accumulate(inModule, entries, { distribution, start: 1 });
      wasm.accumulate(plain, entries, { distribution, start: 1 });
      js.accumulate(ts, entries, { distribution, start: 1 });
    }
    // The slab is still attached: only allocateSlab grows the memory.
    expect(kernel.exports.memory.buffer).toBe(buffer);
    expect(inModule.length).toBe(3001);
    expectSameBits(inModule, plain, 'in place vs copied');
    expectSameBits(inModule, ts, 'in place vs TypeScript');
  });

  it('its SIMD and portable paths agree in place, and addScalar works in place', () => {
    const keys = new Uint32Array([0xdeadbeef, 0x01234567, 42, 7]);
    const coeffs = new Float32Array([1e-3, -2e-3]);
    for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
      const a = fill(kernel.allocateSlab(300_001), 3);
      const b = a.slice();
      kernel.accumulate(a, keys, coeffs, 17, 1, 300_000, distribution);
      kernel.accumulatePortable(b, keys, coeffs, 17, 1, 300_000, distribution);
      expectSameBits(a, b);
    }
    const c = fill(kernel.allocateSlab(70_001), 9);
    const d = c.slice();
    kernel.addScalar(c, 0.25);
    kernel.addScalar(d, 0.25);
    expectSameBits(c, d);
    expect(c[70_000]).toBe(Math.fround(fill(new Float32Array(70_001), 9)[70_000]! + 0.25));
  });
});

describe('a memory grow', () => {
  it('detaches the slabs allocated before it: using one is an error that says why; the new slab gives the same bits', async () => {
    const own = await loadWasmKernel();
    const engine = new NoiseEngine(own);
    const first = fill(own.allocateSlab(1000), 21);
    engine.perturb(first, 3n, 1e-3);
    const before = own.exports.memory.buffer;
    // 8 MiB more than the memory holds: allocateSlab must grow it.
    const second = own.allocateSlab(before.byteLength / 4 + 2 ** 21);
    expect(own.exports.memory.buffer).not.toBe(before);
    expect(first.length).toBe(0);
    expect(() => engine.perturb(first, 3n, 1e-3, { start: 0, end: 0 })).toThrow(/detached \(empty\).*allocate once, with the full size/);
    expect(() => own.inPlace(first)).toThrow(/from before the memory grew/);
    expect(() => engine.accumulate(first, PackedEntries.from([{ seed: 1n, coeff: 1 }]), { start: 0, end: 0 })).toThrow(/detached/);

    fill(second, 23);
    const ts = second.slice();
    engine.perturb(second, 99n, 2e-3, { offset: 40 });
    js.perturb(ts, 99n, 2e-3, { offset: 40 });
    expect(own.inPlace(second)).toBe(true);
    expectSameBits(second, ts);
  });
});

describe('misuse', () => {
  it("refuses a view of another kernel's memory, naming the kernel that made it", async () => {
    const other = await loadWasmKernel();
    const theirs = fill(other.allocateSlab(500), 1);
    const copy = theirs.slice();
    expect(() => wasm.perturb(theirs, 1n, 1e-3)).toThrow(/another WebAssembly noise kernel's memory/);
    expect(() => kernel.inPlace(theirs)).toThrow(/another WebAssembly noise kernel's memory/);
    // Refused before anything was written.
    expectSameBits(theirs, copy);
    // Its own kernel works on it in place.
    expect(other.inPlace(theirs)).toBe(true);
  });

  it("refuses a view of the kernel's memory outside the slabs it made (its scratch)", () => {
    const scratch = new Float32Array(kernel.exports.memory.buffer, 0, 256);
    const copy = scratch.slice();
    expect(() => wasm.perturb(scratch, 1n, 1e-3)).toThrow(/outside the slabs allocateSlab made/);
    expect(() => kernel.addScalar(scratch, 1)).toThrow(/outside the slabs allocateSlab made/);
    expectSameBits(scratch, copy);
  });

  it('refuses misuse also for the low-rank distribution, which the TypeScript kernel computes', async () => {
    const other = await loadWasmKernel();
    const theirs = other.allocateSlab(200);
    const lowRank = { rank: 2, matrices: [{ offset: 10, rows: 7, cols: 9 }] };
    expect(() => wasm.perturb(theirs, 5n, 1e-2, { distribution: 'lowrank', lowRank })).toThrow(/another WebAssembly noise kernel/);
    // And on its own slab it gives the TypeScript kernel's bits.
    const mine = fill(kernel.allocateSlab(200), 17);
    const ts = mine.slice();
    wasm.perturb(mine, 5n, 1e-2, { distribution: 'lowrank', lowRank });
    js.perturb(ts, 5n, 1e-2, { distribution: 'lowrank', lowRank });
    expectSameBits(mine, ts);
  });
});
