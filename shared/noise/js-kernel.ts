/**
 * The TypeScript noise kernel: the executable form of docs/noise.md and the fallback when the native addon is
 * absent. Every float operation is rounded to binary32 with Math.fround, which reproduces single-precision
 * arithmetic exactly for +, −, ×, ÷ and sqrt (a double holds more than twice the bits of a float, so rounding
 * twice is innocuous). Arguments are validated by the engine before they reach this file.
 */
import {
  ANGLE_STEP,
  COS_C2,
  COS_C4,
  COS_C6,
  COS_C8,
  GAUSSIAN_PER_BLOCK,
  LN2,
  LOG_C3,
  LOG_C5,
  LOG_C7,
  LOG_C9,
  RADEMACHER_PER_BLOCK,
  SIN_C3,
  SIN_C5,
  SIN_C7,
  SIN_C9,
  SQRT2,
  STREAM_GAUSSIAN,
  STREAM_LOWRANK_U,
  STREAM_LOWRANK_V,
  STREAM_RADEMACHER,
  lowRankScale,
} from './contract.js';
import { philox4x32 } from './philox.js';
import { DIST_LOWRANK, DIST_RADEMACHER, type NoiseKernel, type PackedLowRank } from './kernel.js';

const f = Math.fround;
const TWO32 = 4294967296;
/** Slab elements per chunk of a fused accumulate: small enough to stay in L1 while every entry is applied. */
const ACCUMULATE_CHUNK = 1024;

const words = new Uint32Array(4);
const gaussians = new Float32Array(4);
const inversePowersOfTwo = Array.from({ length: 32 }, (_, e) => 2 ** -e);

/** Box–Muller on one pair of Philox words: writes r·cos θ to out[at] and r·sin θ to out[at + 1]. */
function boxMuller(radiusWord: number, angleWord: number, out: Float32Array, at: number): void {
  // u = x·2^-24 in (0, 1]; x = m·2^e with m in (√½, √2], split with integer ops only.
  const x = (radiusWord >>> 8) + 1;
  let e = 31 - Math.clz32(x);
  let m = x * inversePowersOfTwo[e]!;
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const s = f((m - 1) / f(m + 1));
  const s2 = f(s * s);
  let p = LOG_C9;
  p = f(f(p * s2) + LOG_C7);
  p = f(f(p * s2) + LOG_C5);
  p = f(f(p * s2) + LOG_C3);
  p = f(f(p * s2) + 1);
  const lnM = f(2 * s * p);
  const lnU = f(f((e - 24) * LN2) + lnM);
  const r = f(Math.sqrt(-2 * lnU));

  // θ = octant·π/4 + y; odd octants count y down from π/4 by complementing the bits (exact).
  const v = angleWord >>> 8;
  const octant = v >>> 21;
  let t = v & 0x1fffff;
  if (octant & 1) t ^= 0x1fffff;
  const y = f((t + 0.5) * ANGLE_STEP);
  const y2 = f(y * y);
  let q = SIN_C9;
  q = f(f(q * y2) + SIN_C7);
  q = f(f(q * y2) + SIN_C5);
  q = f(f(q * y2) + SIN_C3);
  const sinY = f(y + f(f(y * y2) * q));
  q = COS_C8;
  q = f(f(q * y2) + COS_C6);
  q = f(f(q * y2) + COS_C4);
  q = f(f(q * y2) + COS_C2);
  const cosY = f(1 + f(y2 * q));

  const swap = ((octant + 1) >>> 1) & 1;
  let cosTheta = swap ? sinY : cosY;
  let sinTheta = swap ? cosY : sinY;
  if (((octant + 2) >>> 2) & 1) cosTheta = -cosTheta;
  if (octant >>> 2) sinTheta = -sinTheta;
  out[at] = r * cosTheta;
  out[at + 1] = r * sinTheta;
}

function gaussianBlock(block: number, k0: number, k1: number, stream = STREAM_GAUSSIAN): void {
  philox4x32(words, block >>> 0, Math.floor(block / TWO32), stream, 0, k0, k1);
  boxMuller(words[0]!, words[1]!, gaussians, 0);
  boxMuller(words[2]!, words[3]!, gaussians, 2);
}

/** Adds scale·z to slab[start, end) for one distribution; scale is already binary32. */
type RangeKernel = (slab: Float32Array, k0: number, k1: number, scale: number, offset: number, start: number, end: number) => void;

const perturbGaussian: RangeKernel = (slab, k0, k1, scale, offset, start, end) => {
  let i = start;
  while (i < end) {
    const g = offset + i;
    const block = Math.floor(g / GAUSSIAN_PER_BLOCK);
    gaussianBlock(block, k0, k1);
    // Storing into a Float32Array rounds: slab[i] = f32(slab[i] + f32(scale·z)).
    let lane = g - block * GAUSSIAN_PER_BLOCK;
    if (lane === 0 && i + 4 <= end) {
      slab[i] = slab[i]! + f(scale * gaussians[0]!);
      slab[i + 1] = slab[i + 1]! + f(scale * gaussians[1]!);
      slab[i + 2] = slab[i + 2]! + f(scale * gaussians[2]!);
      slab[i + 3] = slab[i + 3]! + f(scale * gaussians[3]!);
      i += 4;
      continue;
    }
    for (; lane < GAUSSIAN_PER_BLOCK && i < end; lane++, i++) slab[i] = slab[i]! + f(scale * gaussians[lane]!);
  }
};

const perturbRademacher: RangeKernel = (slab, k0, k1, scale, offset, start, end) => {
  // Branch-free sign: scale − 2·scale·bit is exactly ±scale in a double (random bits defeat branch prediction).
  const twice = 2 * scale;
  let i = start;
  while (i < end) {
    const g = offset + i;
    const block = Math.floor(g / RADEMACHER_PER_BLOCK);
    philox4x32(words, block >>> 0, Math.floor(block / TWO32), STREAM_RADEMACHER, 0, k0, k1);
    let lane = g - block * RADEMACHER_PER_BLOCK;
    while (lane < RADEMACHER_PER_BLOCK && i < end) {
      const word = words[lane >>> 5]!;
      // A set bit means −1: slab[i] = f32(slab[i] ± scale).
      let bit = lane & 31;
      const stop = Math.min(32, bit + (end - i));
      for (; bit < stop; bit++, i++) slab[i] = slab[i]! + (scale - twice * ((word >>> bit) & 1));
      lane = (lane | 31) + 1;
    }
  }
};

// ---- low-rank extension (docs/noise.md, "Extension: low-rank") ----------------------------------------------------

/** out[j] = the v1 Gaussian mapping of element index first + j, drawn from `stream` under (k0, k1). */
export function gaussianValues(out: Float32Array, count: number, first: number, k0: number, k1: number, stream: number): void {
  let j = 0;
  while (j < count) {
    const g = first + j;
    const block = Math.floor(g / GAUSSIAN_PER_BLOCK);
    gaussianBlock(block, k0, k1, stream);
    for (let lane = g - block * GAUSSIAN_PER_BLOCK; lane < GAUSSIAN_PER_BLOCK && j < count; lane++, j++) {
      out[j] = gaussians[lane]!;
    }
  }
}

// Per-call scratch (V for the columns a call touches, U for one row), grown on demand and reused: it holds
// nothing from one call to the next that could change a result.
let vScratch = new Float32Array(256);
const uScratch = new Float32Array(64);

/**
 * The low-rank part of one matrix (global offset o, m × n, row-major): adds scale·z to slab elements whose
 * matrix-local index lies in [from, to), slab[i] having local index offset + i − o.
 */
function perturbLowRankMatrix(
  slab: Float32Array,
  k0: number,
  k1: number,
  scale: number,
  offset: number,
  o: number,
  n: number,
  rank: number,
  from: number,
  to: number,
): void {
  const firstRow = Math.floor(from / n);
  const lastRow = Math.floor((to - 1) / n);
  // Columns needed: those of the one partial row, or all of them once the range crosses a row boundary.
  const colLo = firstRow === lastRow ? from - firstRow * n : 0;
  const colHi = firstRow === lastRow ? to - firstRow * n : n;
  const vCount = (colHi - colLo) * rank;
  if (vScratch.length < vCount) vScratch = new Float32Array(Math.max(vCount, 2 * vScratch.length));
  const v = vScratch;
  // V depends on the high word only: key (k1, 0).
  gaussianValues(v, vCount, o + colLo * rank, k1, 0, STREAM_LOWRANK_V);
  const c = lowRankScale(rank);
  const u = uScratch;
  const base = o - offset; // slab index of the matrix's element 0
  for (let a = firstRow; a <= lastRow; a++) {
    gaussianValues(u, rank, o + a * rank, k0, k1, STREAM_LOWRANK_U);
    const rowStart = a * n;
    const bFrom = Math.max(from, rowStart) - rowStart;
    const bTo = Math.min(to, rowStart + n) - rowStart;
    const u0 = u[0]!;
    for (let b = bFrom; b < bTo; b++) {
      let at = (b - colLo) * rank;
      let acc = f(u0 * v[at]!);
      for (let k = 1; k < rank; k++) acc = f(acc + f(u[k]! * v[++at]!));
      const i = base + rowStart + b;
      slab[i] = slab[i]! + f(scale * f(acc * c));
    }
  }
}

/** Low-rank noise on [start, end): matrix elements take U·Vᵀ/√r, all others the v1 Gaussian. */
function perturbLowRank(
  slab: Float32Array,
  k0: number,
  k1: number,
  scale: number,
  offset: number,
  start: number,
  end: number,
  layout: PackedLowRank,
): void {
  const { rank, matrices } = layout;
  const count = matrices.length / 3;
  const gStart = offset + start;
  const gEnd = offset + end;
  // First matrix that ends after gStart (matrices are sorted and disjoint, so their ends are sorted too).
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (matrices[3 * mid]! + matrices[3 * mid + 1]! * matrices[3 * mid + 2]! <= gStart) lo = mid + 1;
    else hi = mid;
  }
  let g = gStart;
  for (let j = lo; j < count && g < gEnd; j++) {
    const o = matrices[3 * j]!;
    const n = matrices[3 * j + 2]!;
    const matrixEnd = o + matrices[3 * j + 1]! * n;
    if (o >= gEnd) break;
    if (g < o) {
      perturbGaussian(slab, k0, k1, scale, offset, g - offset, o - offset);
      g = o;
    }
    const stop = Math.min(matrixEnd, gEnd);
    perturbLowRankMatrix(slab, k0, k1, scale, offset, o, n, rank, g - o, stop - o);
    g = stop;
  }
  if (g < gEnd) perturbGaussian(slab, k0, k1, scale, offset, g - offset, end);
}

function requireLayout(layout: PackedLowRank | undefined): PackedLowRank {
  if (layout === undefined) throw new TypeError('a lowrank call needs its packed layout');
  return layout;
}

const perturb: NoiseKernel['perturb'] = (slab, k0, k1, scale, offset, start, end, distribution, lowRank) => {
  const s = f(scale);
  if (distribution === DIST_RADEMACHER) perturbRademacher(slab, k0, k1, s, offset, start, end);
  else if (distribution === DIST_LOWRANK) perturbLowRank(slab, k0, k1, s, offset, start, end, requireLayout(lowRank));
  else perturbGaussian(slab, k0, k1, s, offset, start, end);
};

export const jsKernel: NoiseKernel = {
  kind: 'js',
  simd: 'none',
  philox(out, counter, key) {
    philox4x32(out, counter[0]!, counter[1]!, counter[2]!, counter[3]!, key[0]!, key[1]!);
  },
  perturb,
  accumulate(slab, keys, coeffs, offset, start, end, distribution, lowRank) {
    if (distribution === DIST_LOWRANK) {
      // Entry by entry over the whole range: each element still sees the entries in order, so the bits equal
      // successive perturbs, and each entry's V is drawn once per call rather than once per chunk.
      const layout = requireLayout(lowRank);
      for (let k = 0; k < coeffs.length; k++) {
        perturbLowRank(slab, keys[2 * k]!, keys[2 * k + 1]!, f(coeffs[k]!), offset, start, end, layout);
      }
      return;
    }
    // Chunking keeps each chunk in cache while every entry is applied in order, so the result equals the
    // entries applied one after another as separate perturbs, bit for bit.
    for (let chunkStart = start; chunkStart < end; chunkStart += ACCUMULATE_CHUNK) {
      const chunkEnd = Math.min(end, chunkStart + ACCUMULATE_CHUNK);
      for (let k = 0; k < coeffs.length; k++) {
        perturb(slab, keys[2 * k]!, keys[2 * k + 1]!, coeffs[k]!, offset, chunkStart, chunkEnd, distribution);
      }
    }
  },
  setThreads() {
    // The TypeScript kernel runs on the calling thread only.
  },
  getThreads() {
    return 1;
  },
};
