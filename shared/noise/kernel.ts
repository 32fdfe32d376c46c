/**
 * The low-level noise kernel that both implementations provide. Arguments are already validated by the engine
 * (engine.ts); the native addon re-checks them at the C++ boundary because it must never trust its caller.
 */

export const DIST_GAUSSIAN = 0;
export const DIST_RADEMACHER = 1;
/** Low-rank (LOZO) noise on the layout's matrices, v1 Gaussian elsewhere (docs/noise.md, extension lowrank v1). */
export const DIST_LOWRANK = 2;
export type DistributionCode = typeof DIST_GAUSSIAN | typeof DIST_RADEMACHER | typeof DIST_LOWRANK;

/**
 * A validated low-rank layout in the form both kernels take: the rank and (offset, rows, cols) triples in global
 * index coordinates, sorted by offset and non-overlapping (engine.ts checks all of it).
 */
export interface PackedLowRank {
  readonly rank: number;
  readonly matrices: Float64Array;
}

export interface NoiseKernel {
  readonly kind: 'native' | 'js' | 'wasm';
  /** Vector instruction set the kernel dispatched to ('avx2', 'neon', 'generic'), or 'none' for TypeScript. */
  readonly simd: string;
  /** One Philox4x32-10 block: out = philox(counter[0..3], key[0..1]). */
  philox(out: Uint32Array, counter: Uint32Array, key: Uint32Array): void;
  /** slab[i] = f32(slab[i] + f32(scale · z(key, offset + i))) for start ≤ i < end. */
  perturb(
    slab: Float32Array,
    k0: number,
    k1: number,
    scale: number,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
    /** Required when distribution is DIST_LOWRANK, ignored otherwise. */
    lowRank?: PackedLowRank,
  ): void;
  /**
   * Applies entries k = 0..K−1 in order, as K perturbs would, in one pass over [start, end).
   * keys holds (k0, k1) pairs: keys.length === 2·coeffs.length.
   */
  accumulate(
    slab: Float32Array,
    keys: Uint32Array,
    coeffs: Float32Array,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
    /** Required when distribution is DIST_LOWRANK, ignored otherwise. */
    lowRank?: PackedLowRank,
  ): void;
  /**
   * Throws when the kernel cannot work on `slab` at all (the WebAssembly kernel: a view of its memory detached by
   * a grow, or of another kernel's memory). The engine calls it first, so even an empty range is refused.
   */
  checkSlab?(slab: Float32Array): void;
  /** Worker threads for large slabs (native only; the TypeScript kernel always uses the calling thread). */
  setThreads(threads: number): void;
  getThreads(): number;
}
