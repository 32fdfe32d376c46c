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
  STREAM_RADEMACHER,
} from './contract.js';
import { philox4x32 } from './philox.js';
import { DIST_RADEMACHER, type NoiseKernel } from './kernel.js';

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

function gaussianBlock(block: number, k0: number, k1: number): void {
  philox4x32(words, block >>> 0, Math.floor(block / TWO32), STREAM_GAUSSIAN, 0, k0, k1);
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

const perturb: NoiseKernel['perturb'] = (slab, k0, k1, scale, offset, start, end, distribution) => {
  const s = f(scale);
  if (distribution === DIST_RADEMACHER) perturbRademacher(slab, k0, k1, s, offset, start, end);
  else perturbGaussian(slab, k0, k1, s, offset, start, end);
};

export const jsKernel: NoiseKernel = {
  kind: 'js',
  simd: 'none',
  philox(out, counter, key) {
    philox4x32(out, counter[0]!, counter[1]!, counter[2]!, counter[3]!, key[0]!, key[1]!);
  },
  perturb,
  accumulate(slab, keys, coeffs, offset, start, end, distribution) {
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
