/**
 * The public noise API: validates every argument (naming it in the error), converts seeds to Philox keys and
 * hands plain numbers and typed arrays to a kernel (native addon or TypeScript). Nothing is written before all
 * arguments have been checked, so a rejected call leaves the slab unchanged.
 */
import { MAX_GLOBAL_INDEX } from './contract.js';
import {
  DIST_GAUSSIAN,
  DIST_LOWRANK,
  DIST_RADEMACHER,
  type DistributionCode,
  type NoiseKernel,
  type PackedLowRank,
} from './kernel.js';
import { packLowRank, type LowRankLayout } from './low-rank.js';

/** A 64-bit unsigned seed: a bigint, a non-negative safe integer, or a decimal string (as it crosses the wire). */
export type Seed = bigint | number | string;
export type Distribution = 'gaussian' | 'rademacher' | 'lowrank';

export interface NoiseOptions {
  /** 'gaussian' (default), 'rademacher' (±1) or 'lowrank' (rank-r noise on the matrices of `lowRank`). */
  distribution?: Distribution;
  /** The matrices and rank of 'lowrank' (required with it, an error with any other distribution). */
  lowRank?: LowRankLayout;
  /** Global index of slab[0] in the whole trainable vector, so a view or a shard draws its own part of z. */
  offset?: number;
  /** First slab index to touch (default 0). */
  start?: number;
  /** One past the last slab index to touch (default slab.length). */
  end?: number;
}

/** One (seed, coefficient) term of an update: θ += coeff · z(seed). */
export interface UpdateEntry {
  seed: Seed;
  coeff: number;
}

const SEED_LIMIT = 1n << 64n;
const TWO32 = 4294967296;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value;
}

/**
 * Splits a seed into the Philox key (k0 = low 32 bits, k1 = high 32 bits).
 * Throws TypeError/RangeError naming `name` when the seed is not an integer in [0, 2^64).
 */
export function seedToKey(seed: Seed, name = 'seed'): [number, number] {
  let big: bigint;
  if (typeof seed === 'bigint') {
    big = seed;
  } else if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`${name} must be a non-negative safe integer (or a bigint below 2^64), got ${describe(seed)}`);
    }
    return [seed >>> 0, Math.floor(seed / TWO32)];
  } else if (typeof seed === 'string') {
    if (!/^[0-9]{1,20}$/.test(seed)) {
      throw new RangeError(`${name} must be a decimal integer string in [0, 2^64), got ${describe(seed)}`);
    }
    big = BigInt(seed);
  } else {
    throw new TypeError(`${name} must be a bigint, number or decimal string, got ${describe(seed)}`);
  }
  if (big < 0n || big >= SEED_LIMIT) {
    throw new RangeError(`${name} must be in [0, 2^64), got ${describe(seed)}`);
  }
  return [Number(big & 0xffffffffn), Number(big >> 32n)];
}

/** Rounds to binary32 and rejects what is not finite there (a huge double would become Infinity). */
function toFiniteFloat32(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  const rounded = Math.fround(value);
  if (!Number.isFinite(rounded)) {
    throw new RangeError(`${name} must be finite in float32, got ${describe(value)}`);
  }
  return rounded;
}

function distributionCode(value: unknown, name: string): DistributionCode {
  if (value === undefined || value === 'gaussian') return DIST_GAUSSIAN;
  if (value === 'rademacher') return DIST_RADEMACHER;
  if (value === 'lowrank') return DIST_LOWRANK;
  throw new TypeError(`${name} must be 'gaussian', 'rademacher' or 'lowrank', got ${describe(value)}`);
}

function assertFloat32Array(value: unknown, name: string): asserts value is Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array, got ${describe(value)}`);
  }
}

interface ResolvedRange {
  offset: number;
  start: number;
  end: number;
  distribution: DistributionCode;
  lowRank?: PackedLowRank;
}

/**
 * Packed layouts by layout object, so that repeated calls with the same layout skip validation. An entry is used
 * only while the object still holds the same matrices array of the same length and the same rank; a layout must
 * not be edited in place otherwise (build a new one).
 */
const packedLayouts = new WeakMap<object, { rank: unknown; matrices: unknown; length: number; packed: PackedLowRank }>();

function resolveLowRank(layout: unknown, name: string): PackedLowRank {
  if (layout !== null && typeof layout === 'object') {
    const { rank, matrices } = layout as { rank: unknown; matrices: unknown };
    const hit = packedLayouts.get(layout);
    if (hit && hit.rank === rank && hit.matrices === matrices && Array.isArray(matrices) && hit.length === matrices.length) {
      return hit.packed;
    }
    const packed = packLowRank(layout, name);
    packedLayouts.set(layout, { rank, matrices, length: (matrices as unknown[]).length, packed });
    return packed;
  }
  return packLowRank(layout, name);
}

function resolveOptions(length: number, options: NoiseOptions | undefined, method: string): ResolvedRange {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`${method}: options must be an object, got ${describe(options)}`);
  }
  const offset = options?.offset ?? 0;
  const start = options?.start ?? 0;
  const end = options?.end ?? length;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > MAX_GLOBAL_INDEX) {
    throw new RangeError(
      `${method}: options.offset must be a non-negative integer with offset + length <= 2^53 - 1, got ${describe(offset)}`,
    );
  }
  if (!Number.isInteger(start) || start < 0 || start > length) {
    throw new RangeError(`${method}: options.start must be an integer in [0, ${length}], got ${describe(start)}`);
  }
  if (!Number.isInteger(end) || end < start || end > length) {
    throw new RangeError(`${method}: options.end must be an integer in [start=${start}, ${length}], got ${describe(end)}`);
  }
  const distribution = distributionCode(options?.distribution, `${method}: options.distribution`);
  if (distribution !== DIST_LOWRANK) {
    if (options?.lowRank !== undefined) {
      throw new TypeError(`${method}: options.lowRank is only allowed with options.distribution 'lowrank'`);
    }
    return { offset, start, end, distribution };
  }
  if (options?.lowRank === undefined) {
    throw new TypeError(`${method}: options.lowRank is required with options.distribution 'lowrank'`);
  }
  return { offset, start, end, distribution, lowRank: resolveLowRank(options.lowRank, `${method}: options.lowRank`) };
}

/**
 * Update entries packed for the kernel: Philox keys as (k0, k1) pairs and float32 coefficients. Build it once
 * (e.g. per log entry) to accumulate without re-validating or allocating.
 */
export class PackedEntries {
  readonly keys: Uint32Array;
  readonly coeffs: Float32Array;

  private constructor(keys: Uint32Array, coeffs: Float32Array) {
    this.keys = keys;
    this.coeffs = coeffs;
  }

  get length(): number {
    return this.coeffs.length;
  }

  static from(entries: readonly UpdateEntry[], name = 'entries'): PackedEntries {
    if (!Array.isArray(entries)) throw new TypeError(`${name} must be an array of { seed, coeff }, got ${describe(entries)}`);
    const keys = new Uint32Array(entries.length * 2);
    const coeffs = new Float32Array(entries.length);
    entries.forEach((entry: unknown, k) => {
      if (entry === null || typeof entry !== 'object') {
        throw new TypeError(`${name}[${k}] must be an object { seed, coeff }, got ${describe(entry)}`);
      }
      const { seed, coeff } = entry as Record<string, unknown>;
      const [k0, k1] = seedToKey(seed as Seed, `${name}[${k}].seed`);
      keys[2 * k] = k0;
      keys[2 * k + 1] = k1;
      coeffs[k] = toFiniteFloat32(coeff, `${name}[${k}].coeff`);
    });
    return new PackedEntries(keys, coeffs);
  }
}

export class NoiseEngine {
  readonly kernel: NoiseKernel;
  private readonly counterScratch = new Uint32Array(4);
  private readonly keyScratch = new Uint32Array(2);

  constructor(kernel: NoiseKernel) {
    this.kernel = kernel;
  }

  /** 'native', 'js' or 'wasm'. */
  get kind(): NoiseKernel['kind'] {
    return this.kernel.kind;
  }

  /** slab[i] = f32(slab[i] + f32(scale · z(seed, offset + i))) for every i in [start, end). */
  perturb(slab: Float32Array, seed: Seed, scale: number, options?: NoiseOptions): void {
    assertFloat32Array(slab, 'perturb: slab');
    this.kernel.checkSlab?.(slab);
    const [k0, k1] = seedToKey(seed, 'perturb: seed');
    const s = toFiniteFloat32(scale, 'perturb: scale');
    const r = resolveOptions(slab.length, options, 'perturb');
    if (r.start === r.end) return;
    this.kernel.perturb(slab, k0, k1, s, r.offset, r.start, r.end, r.distribution, r.lowRank);
  }

  /**
   * slab[i] += Σ_k coeff_k · z(seed_k, offset + i), applied in entry order exactly as successive perturbs,
   * but in one pass over memory.
   */
  accumulate(slab: Float32Array, entries: readonly UpdateEntry[] | PackedEntries, options?: NoiseOptions): void {
    assertFloat32Array(slab, 'accumulate: slab');
    this.kernel.checkSlab?.(slab);
    const packed = entries instanceof PackedEntries ? entries : PackedEntries.from(entries, 'accumulate: entries');
    const r = resolveOptions(slab.length, options, 'accumulate');
    if (r.start === r.end || packed.length === 0) return;
    this.kernel.accumulate(slab, packed.keys, packed.coeffs, r.offset, r.start, r.end, r.distribution, r.lowRank);
  }

  /** Writes z(seed, offset + i) into out[i] (as 0 + z, so a −0 reads as +0). For tests, audits and tools. */
  sample(out: Float32Array, seed: Seed, options?: Omit<NoiseOptions, 'start' | 'end'>): void {
    assertFloat32Array(out, 'sample: out');
    this.kernel.checkSlab?.(out);
    const [k0, k1] = seedToKey(seed, 'sample: seed');
    const r = resolveOptions(out.length, options, 'sample');
    out.fill(0);
    if (out.length > 0) this.kernel.perturb(out, k0, k1, 1, r.offset, 0, out.length, r.distribution, r.lowRank);
  }

  /** One raw Philox4x32-10 block, for known-answer tests. */
  philox(counter: readonly number[], key: readonly number[]): Uint32Array {
    const check = (values: readonly number[], length: number, name: string): void => {
      if (!Array.isArray(values) || values.length !== length) {
        throw new TypeError(`philox: ${name} must be an array of ${length} uint32 values`);
      }
      values.forEach((v, i) => {
        if (!Number.isInteger(v) || v < 0 || v >= TWO32) {
          throw new RangeError(`philox: ${name}[${i}] must be an integer in [0, 2^32), got ${describe(v)}`);
        }
      });
    };
    check(counter, 4, 'counter');
    check(key, 2, 'key');
    this.counterScratch.set(counter);
    this.keyScratch.set(key);
    const out = new Uint32Array(4);
    this.kernel.philox(out, this.counterScratch, this.keyScratch);
    return out;
  }

  /** Threads the native kernel may use for large ranges (1 = the calling thread only). */
  setThreads(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new RangeError(`setThreads: threads must be an integer in [1, 256], got ${describe(threads)}`);
    }
    this.kernel.setThreads(threads);
  }

  get threads(): number {
    return this.kernel.getThreads();
  }
}
