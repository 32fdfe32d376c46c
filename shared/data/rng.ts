/**
 * The seeded generator behind every random choice in this folder: epoch shuffles, partitions, per-agent
 * feature shifts and train/test splits. Nothing here may use Math.random — two replicas given the same seed
 * must draw the same permutation, or an agent's epoch order (and so its MeZO losses) would not replay.
 *
 * Construction (docs/data.md, "The shuffling PRNG"):
 *   1. The 64-bit seed (same type and wire form as noise seeds) is folded with a list of stream tags:
 *      state ← mix64((state XOR tag) + γ) for each tag (mix64 is splitmix64's output function, γ its
 *      golden-ratio increment 0x9E3779B97F4A7C15), where a string tag is first reduced to its FNV-1a
 *      32-bit hash and a numeric tag is a non-negative safe integer. Tags keep independent uses apart:
 *      ('shuffle', epoch) and ('dirichlet', attempt) never share a stream.
 *   2. The next two splitmix64 outputs from that state, mix64(state + γ) and mix64(state + 2γ), fill the
 *      128-bit state of xoshiro128** (Blackman & Vigna), low word first.
 *   3. xoshiro128** then produces 32-bit words using only 32-bit integer operations.
 * Integer draws (nextUint32, nextBelow, permutation, shuffle) are therefore bit-reproducible in any language.
 * Real-valued draws (normal, gamma, dirichlet) also call Math.log/sqrt/exp, which V8 implements identically
 * on every platform; another runtime may differ in the last ulp.
 */
import { seedToKey, type Seed } from '../noise/engine.js';
import { describe, requireInt, requirePositive } from './describe.js';
import { fnv1a } from './hash.js';

export type { Seed } from '../noise/engine.js';
/** A stream tag: a short label ('shuffle') or a non-negative integer (an epoch, an agent, an attempt). */
export type StreamTag = string | number;

const MASK64 = (1n << 64n) - 1n;
const GOLDEN64 = 0x9e3779b97f4a7c15n;
const TWO32 = 4294967296;
const TWO53 = 9007199254740992;

/** splitmix64's output for the state after one step from `state`: mix64(state + γ). */
function splitmix64(state: bigint): bigint {
  let z = (state + GOLDEN64) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function tagValue(tag: StreamTag, index: number): bigint {
  if (typeof tag === 'string') return BigInt(fnv1a(tag));
  if (typeof tag === 'number' && Number.isSafeInteger(tag) && tag >= 0) return BigInt(tag);
  throw new RangeError(`stream tag ${index} must be a string or a non-negative safe integer, got ${describe(tag)}`);
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export class SeededRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Second value of the last polar-method pair, or NaN when none is pending. */
  private spareNormal = NaN;

  /** A generator for `seed` on the stream named by `tags` (see the file comment for the exact derivation). */
  constructor(seed: Seed, ...tags: StreamTag[]) {
    const [k0, k1] = seedToKey(seed, 'seed');
    let state = (BigInt(k1) << 32n) | BigInt(k0);
    tags.forEach((tag, i) => {
      state = splitmix64(state ^ tagValue(tag, i));
    });
    const a = splitmix64(state);
    const b = splitmix64((state + GOLDEN64) & MASK64);
    this.s0 = Number(a & 0xffffffffn);
    this.s1 = Number(a >> 32n);
    this.s2 = Number(b & 0xffffffffn);
    this.s3 = Number(b >> 32n);
    // xoshiro's one forbidden state; splitmix64 makes it practically unreachable, but never impossible.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /**
   * A generator started from a raw xoshiro128** state (four uint32 words, not all zero), bypassing seeding:
   * for known-answer tests against the reference implementation.
   */
  static fromState(state: readonly [number, number, number, number]): SeededRng {
    const words: unknown = state;
    const isWord = (w: unknown): boolean => Number.isInteger(w) && (w as number) >= 0 && (w as number) < TWO32;
    if (!Array.isArray(words) || words.length !== 4 || !words.every(isWord)) {
      throw new RangeError(`fromState: state must be four integers in [0, 2^32), got ${describe(words)}`);
    }
    if (words.every((w) => w === 0)) throw new RangeError('fromState: state must not be all zero');
    const rng = new SeededRng(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = state;
    return rng;
  }

  /** The next 32-bit word of xoshiro128**, in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform integer in [0, n), n in [1, 2^32], without modulo bias (rejection of the short top interval). */
  nextBelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO32) {
      throw new RangeError(`nextBelow: n must be an integer in [1, 2^32], got ${describe(n)}`);
    }
    const limit = TWO32 - (TWO32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A uniform double in [0, 1) with 53 random bits (two words). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / TWO53;
  }

  /** A uniform double in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.nextFloat();
  }

  /** A standard normal draw (Marsaglia's polar method; the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const spare = this.spareNormal;
      this.spareNormal = NaN;
      return spare;
    }
    for (;;) {
      const u = 2 * this.nextFloat() - 1;
      const v = 2 * this.nextFloat() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * f;
        return u * f;
      }
    }
  }

  /**
   * log of a Gamma(shape, 1) draw, by Marsaglia & Tsang (2000). Shapes below 1 use the boost
   * G(a) = G(a + 1) · U^(1/a), kept in log space: for a = 0.01, U^(1/a) underflows a double about half the
   * time, which would turn a Dirichlet draw into 0/0.
   */
  logGamma(shape: number): number {
    requirePositive(shape, 'logGamma: shape');
    if (shape < 1) {
      const u = 1 - this.nextFloat(); // in (0, 1], so log(u) is finite
      return this.logGamma(shape + 1) + Math.log(u) / shape;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      let v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const u = this.nextFloat();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
      if (u > 0 && Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
  }

  /** A Gamma(shape, 1) draw. May underflow to 0 for tiny shapes; use logGamma where that matters. */
  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  /**
   * A Dirichlet(alphas) draw: normalised Gamma(alpha_i) draws, combined in log space (subtract the largest
   * log before exponentiating) so that even α = 0.001 yields a proper probability vector summing to 1.
   */
  dirichlet(alphas: ArrayLike<number>): Float64Array {
    if (alphas.length < 1) throw new RangeError('dirichlet: alphas must have at least one entry');
    const logs = new Float64Array(alphas.length);
    let max = -Infinity;
    for (let i = 0; i < alphas.length; i++) {
      const alpha = requirePositive(alphas[i], `dirichlet: alphas[${i}]`);
      logs[i] = this.logGamma(alpha);
      if (logs[i]! > max) max = logs[i]!;
    }
    let sum = 0;
    for (let i = 0; i < logs.length; i++) {
      logs[i] = Math.exp(logs[i]! - max);
      sum += logs[i]!;
    }
    for (let i = 0; i < logs.length; i++) logs[i] = logs[i]! / sum;
    return logs;
  }

  /** Shuffles `items` in place (Fisher–Yates from the back, one nextBelow per position) and returns it. */
  shuffle<T extends { length: number; [index: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextBelow(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    requireInt(n, 'permutation: n', 0, TWO32 - 1);
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}

/** Shorthand for `new SeededRng(seed, ...tags)`. */
export function rngFor(seed: Seed, ...tags: StreamTag[]): SeededRng {
  return new SeededRng(seed, ...tags);
}
