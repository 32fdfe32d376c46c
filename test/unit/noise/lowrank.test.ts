/**
 * The low-rank extension (lowrank v1, docs/noise.md) through the process-wide engine (native or TypeScript, per
 * vitest project): argument checks, equivalences the contract promises, a transcription of the definition element by
 * element, the shared-V property of seeds with one high word, statistics, and the tensor rule.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lowRankScale, STREAM_LOWRANK_U, STREAM_LOWRANK_V } from '../../../shared/noise/contract.js';
import { lowRankLayoutFromTensors, noise, type LowRankLayout } from '../../../shared/noise/index.js';
import { gaussianValues } from '../../../shared/noise/js-kernel.js';

const f = Math.fround;
const golden = (
  JSON.parse(readFileSync(new URL('./golden-vectors.json', import.meta.url), 'utf8')) as {
    lowrank: { matrices: LowRankLayout['matrices']; count: number; vectors: { rank: number; seed: string; bits: string[] }[] };
  }
).lowrank;
const hex = (words: Uint32Array): string[] => Array.from(words, (w) => w.toString(16).padStart(8, '0'));
const bitsOf = (values: Float32Array): Uint32Array =>
  new Uint32Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));

function slabOf(length: number, salt = 0): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + salt) * 0.05);
}

// Two matrices with a gap (padding) before, between and after, odd column counts, and a bias between them.
const LAYOUT: LowRankLayout = {
  rank: 3,
  matrices: [
    { offset: 5, rows: 13, cols: 11 },
    { offset: 5 + 143 + 7, rows: 9, cols: 17 },
  ],
};
const LENGTH = 5 + 143 + 7 + 153 + 6;

/** z at global index g straight from the definition: one element at a time, no row or column bookkeeping. */
function referenceZ(seed: bigint, g: number, layout: LowRankLayout): number {
  const k0 = Number(seed & 0xffffffffn);
  const k1 = Number(seed >> 32n);
  const one = new Float32Array(1);
  for (const { offset: o, rows, cols } of layout.matrices) {
    if (g < o || g >= o + rows * cols) continue;
    const r = layout.rank;
    const a = Math.floor((g - o) / cols);
    const b = (g - o) % cols;
    const u = new Float32Array(r);
    const v = new Float32Array(r);
    gaussianValues(u, r, o + a * r, k0, k1, STREAM_LOWRANK_U);
    gaussianValues(v, r, o + b * r, k1, 0, STREAM_LOWRANK_V);
    let acc = f(u[0]! * v[0]!);
    for (let k = 1; k < r; k++) acc = f(acc + f(u[k]! * v[k]!));
    return f(acc * lowRankScale(r));
  }
  gaussianValues(one, 1, g, k0, k1, 0);
  return one[0]!;
}

function expectRejected(call: (slab: Float32Array) => void, type: typeof TypeError | typeof RangeError, message: RegExp): void {
  const slab = slabOf(64);
  const before = bitsOf(slab);
  expect(() => call(slab)).toThrow(type);
  expect(() => call(slab)).toThrow(message);
  expect(bitsOf(slab)).toEqual(before);
}

describe(`lowrank noise (${noise.kind})`, () => {
  it('rejects a missing, stray or malformed layout, naming the field, and writes nothing', () => {
    const lr = (lowRank: unknown) => ({ distribution: 'lowrank' as const, lowRank: lowRank as LowRankLayout });
    expectRejected((s) => noise.perturb(s, 1n, 1, { distribution: 'lowrank' }), TypeError, /perturb: options\.lowRank is required/);
    expectRejected((s) => noise.accumulate(s, [], { distribution: 'lowrank' }), TypeError, /accumulate: options\.lowRank is required/);
    expectRejected((s) => noise.sample(s, 1n, { distribution: 'lowrank' }), TypeError, /sample: options\.lowRank is required/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { lowRank: LAYOUT }), TypeError, /perturb: options\.lowRank is only allowed with options\.distribution 'lowrank'/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr(null)), TypeError, /perturb: options\.lowRank must be an object/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr({ rank: 0, matrices: [] })), RangeError, /perturb: options\.lowRank\.rank must be an integer in \[1, 64\], got 0/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr({ rank: 65, matrices: [] })), RangeError, /options\.lowRank\.rank/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr({ rank: 2.5, matrices: [] })), RangeError, /options\.lowRank\.rank/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr({ rank: '4', matrices: [] })), TypeError, /options\.lowRank\.rank must be a number/);
    expectRejected((s) => noise.perturb(s, 1n, 1, lr({ rank: 4 })), TypeError, /options\.lowRank\.matrices must be an array/);
    const m = (matrices: unknown[]) => lr({ rank: 2, matrices });
    expectRejected((s) => noise.perturb(s, 1n, 1, m([7])), TypeError, /options\.lowRank\.matrices\[0\] must be an object/);
    expectRejected((s) => noise.perturb(s, 1n, 1, m([{ offset: -1, rows: 3, cols: 3 }])), RangeError, /options\.lowRank\.matrices\[0\]\.offset must be a non-negative/);
    expectRejected((s) => noise.perturb(s, 1n, 1, m([{ offset: 0, rows: 0, cols: 3 }])), RangeError, /options\.lowRank\.matrices\[0\]\.rows must be a positive integer/);
    expectRejected((s) => noise.perturb(s, 1n, 1, m([{ offset: 0, rows: 3, cols: 1.5 }])), RangeError, /options\.lowRank\.matrices\[0\]\.cols must be a positive integer/);
    expectRejected(
      (s) => noise.accumulate(s, [{ seed: 1n, coeff: 1 }], m([{ offset: 0, rows: 3, cols: 3 }, { offset: 8, rows: 3, cols: 3 }])),
      RangeError,
      /accumulate: options\.lowRank\.matrices\[1\]\.offset must be >= 9 \(matrices sorted by offset, not overlapping\), got 8/,
    );
    expectRejected(
      (s) => noise.perturb(s, 1n, 1, m([{ offset: 2 ** 53 - 10, rows: 3, cols: 4 }])),
      RangeError,
      /options\.lowRank\.matrices\[0\]: offset \+ rows·cols must be <= 2\^53 - 1/,
    );
    expectRejected(
      (s) => noise.perturb(s, 1n, 1, m([{ offset: 2 ** 53 - 40, rows: 1, cols: 30 }])),
      RangeError,
      /options\.lowRank\.matrices\[0\]: offset \+ max\(rows, cols\)·rank/,
    );
  });

  it('re-validates a cached layout whose matrices were replaced', () => {
    const layout: { rank: number; matrices: { offset: number; rows: number; cols: number }[] } = {
      rank: 2,
      matrices: [{ offset: 0, rows: 4, cols: 4 }],
    };
    noise.sample(new Float32Array(16), 1n, { distribution: 'lowrank', lowRank: layout });
    layout.matrices = [{ offset: 0, rows: 0, cols: 4 }];
    expect(() => noise.sample(new Float32Array(16), 1n, { distribution: 'lowrank', lowRank: layout })).toThrow(/matrices\[0\]\.rows/);
  });

  it(`matches the ${golden.vectors.length} committed lowrank golden vectors bit for bit`, () => {
    expect(golden.vectors.length).toBe(21);
    for (const v of golden.vectors) {
      const z = new Float32Array(golden.count);
      noise.sample(z, v.seed, { distribution: 'lowrank', lowRank: { rank: v.rank, matrices: golden.matrices } });
      expect(hex(bitsOf(z)), `rank ${v.rank} seed ${v.seed}`).toEqual(v.bits);
    }
  });

  it('with no matrices is the Gaussian, bit for bit', () => {
    for (const offset of [0, 3, 2 ** 40 + 1]) {
      const a = new Float32Array(1001);
      const b = new Float32Array(1001);
      noise.sample(a, 0xfeedface12345n, { offset });
      noise.sample(b, 0xfeedface12345n, { offset, distribution: 'lowrank', lowRank: { rank: 5, matrices: [] } });
      expect(bitsOf(b)).toEqual(bitsOf(a));
    }
  });

  it('matches the definition element by element, and the v1 Gaussian outside the matrices', () => {
    for (const seed of [1n, 0x0123456789abcdefn, 0xffffffff00000000n]) {
      for (const rank of [1, 3, 4]) {
        const layout = { ...LAYOUT, rank };
        const z = new Float32Array(LENGTH);
        noise.sample(z, seed, { distribution: 'lowrank', lowRank: layout });
        const expected = Float32Array.from({ length: LENGTH }, (_, g) => referenceZ(seed, g, layout) + 0);
        expect(bitsOf(z), `seed ${seed} rank ${rank}`).toEqual(bitsOf(expected));
      }
    }
    // The gaps and the bias are the ordinary Gaussian of the same seed.
    const z = new Float32Array(LENGTH);
    const gauss = new Float32Array(LENGTH);
    noise.sample(z, 99n, { distribution: 'lowrank', lowRank: LAYOUT });
    noise.sample(gauss, 99n);
    for (const g of [0, 4, 148, 154, 308, LENGTH - 1]) expect(z[g]).toBe(gauss[g]);
    expect(z[5]).not.toBe(gauss[5]);
  });

  it('computes exactly its part in a view, a shard or a sub-range', () => {
    const seed = 0xabcdef0123n;
    const full = slabOf(LENGTH, 1);
    noise.perturb(full, seed, 1e-3, { distribution: 'lowrank', lowRank: LAYOUT });
    // Every cut: mid-row, on a row boundary, inside a gap, across matrices.
    for (const [from, to] of [[0, LENGTH], [7, 40], [16, 27], [10, 11], [150, 170], [60, 300], [LENGTH - 3, LENGTH]] as const) {
      // As a view with its own offset…
      const view = slabOf(LENGTH, 1).subarray(from, to);
      noise.perturb(view, seed, 1e-3, { distribution: 'lowrank', lowRank: LAYOUT, offset: from });
      expect(bitsOf(view), `view [${from}, ${to})`).toEqual(bitsOf(full.subarray(from, to)));
      // …and as start/end on the whole slab, which leaves the rest alone.
      const part = slabOf(LENGTH, 1);
      noise.perturb(part, seed, 1e-3, { distribution: 'lowrank', lowRank: LAYOUT, start: from, end: to });
      const untouched = slabOf(LENGTH, 1);
      expect(bitsOf(part.subarray(from, to))).toEqual(bitsOf(full.subarray(from, to)));
      expect(bitsOf(part.subarray(0, from))).toEqual(bitsOf(untouched.subarray(0, from)));
      expect(bitsOf(part.subarray(to))).toEqual(bitsOf(untouched.subarray(to)));
    }
  });

  it('accumulates exactly as successive perturbs', () => {
    const entries = [
      { seed: 11n, coeff: 0.25 },
      { seed: (7n << 32n) | 3n, coeff: -1.5e-3 },
      { seed: (7n << 32n) | 4n, coeff: 2e-3 },
      { seed: 0xffffffffffffffffn, coeff: 3 },
    ];
    for (const [offset, start, end] of [[0, 0, LENGTH], [0, 9, 200], [2, 30, 31]] as const) {
      const options = { distribution: 'lowrank' as const, lowRank: LAYOUT, offset, start, end };
      const fused = slabOf(LENGTH, 2);
      noise.accumulate(fused, entries, options);
      const sequential = slabOf(LENGTH, 2);
      for (const { seed, coeff } of entries) noise.perturb(sequential, seed, coeff, options);
      expect(bitsOf(fused)).toEqual(bitsOf(sequential));
    }
  });

  it('gives each matrix rank r, and the same V to seeds that share the high word', () => {
    // r = 1: z(a, b) = f32(u_a·v_b), so z(a,b)·z(a',b') = z(a,b')·z(a',b) up to a few roundings.
    const rows = 12;
    const cols = 10;
    const layout = { rank: 1, matrices: [{ offset: 0, rows, cols }] };
    const sample = (seed: bigint): Float32Array => {
      const z = new Float32Array(rows * cols);
      noise.sample(z, seed, { distribution: 'lowrank', lowRank: layout });
      return z;
    };
    const z = sample(0x1234_0000_0001n);
    const near = (x: number, y: number) => Math.abs(x - y) <= 1e-5 * Math.max(Math.abs(x), Math.abs(y), 1e-3);
    for (let a = 0; a + 1 < rows; a++) {
      for (let b = 0; b + 1 < cols; b++) {
        expect(near(z[a * cols + b]! * z[(a + 1) * cols + b + 1]!, z[a * cols + b + 1]! * z[(a + 1) * cols + b]!)).toBe(true);
      }
    }
    // Column ratios come from V alone: equal for a seed with the same high word, not for another high word.
    const ratios = (m: Float32Array, a: number) => Array.from({ length: cols - 1 }, (_, b) => m[a * cols + b]! / m[a * cols + b + 1]!);
    const sameV = sample(0x1234_9999_9999n);
    const otherV = sample(0x1235_0000_0001n);
    const base = ratios(z, 0);
    ratios(sameV, 5).forEach((q, b) => expect(Math.abs(q - base[b]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(q))));
    expect(ratios(otherV, 0).filter((q, b) => Math.abs(q - base[b]!) > 1e-2 * Math.max(1, Math.abs(q))).length).toBeGreaterThan(cols / 2);
    // Same V does not mean the same direction: U differs with the low word.
    expect(bitsOf(sameV)).not.toEqual(bitsOf(z));
  });

  it('has mean 0 and variance 1 on the matrix part', () => {
    // Deterministic seeds; the bounds are > 4 standard errors of the estimates for 24 independent 128×96 draws.
    const layout = { rank: 4, matrices: [{ offset: 3, rows: 128, cols: 96 }] };
    const z = new Float32Array(3 + 128 * 96);
    let sum = 0;
    let squares = 0;
    let n = 0;
    for (let s = 0; s < 24; s++) {
      noise.sample(z, BigInt(s) * 0x1_0000_0001n + 17n, { distribution: 'lowrank', lowRank: layout });
      for (let i = 3; i < z.length; i++) {
        sum += z[i]!;
        squares += z[i]! * z[i]!;
        n++;
      }
    }
    const mean = sum / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(squares / n - mean * mean - 1)).toBeLessThan(0.15);
  });
});

describe('lowRankLayoutFromTensors', () => {
  it('takes tensors of two or more dimensions, rows = shape[0], cols = the rest, in offset order', () => {
    const layout = lowRankLayoutFromTensors(
      [
        { offset: 6400, shape: [16, 3, 3, 3] }, // conv kernel: 16 × 27
        { offset: 0, shape: [64, 100] },
        { offset: 6832, shape: [100] }, // bias: Gaussian
        { offset: 6932, shape: [] }, // scalar
        { offset: 6933, shape: [5, 40] }, // rows = 5 > 4: still a matrix
      ],
      4,
    );
    expect(layout).toEqual({
      rank: 4,
      matrices: [
        { offset: 0, rows: 64, cols: 100 },
        { offset: 6400, rows: 16, cols: 27 },
        { offset: 6933, rows: 5, cols: 40 },
      ],
    });
  });

  it('leaves matrices with rows <= rank or cols <= rank to the Gaussian', () => {
    const tensors = [
      { offset: 0, shape: [4, 100] },
      { offset: 400, shape: [100, 4] },
      { offset: 800, shape: [10, 2, 2] }, // cols = 4
      { offset: 840, shape: [10, 5] },
    ];
    expect(lowRankLayoutFromTensors(tensors, 4).matrices).toEqual([{ offset: 840, rows: 10, cols: 5 }]);
    expect(lowRankLayoutFromTensors(tensors, 3).matrices.map((m) => m.offset)).toEqual([0, 400, 800, 840]);
  });

  it('names the bad argument', () => {
    expect(() => lowRankLayoutFromTensors([], 0)).toThrow(/lowRankLayoutFromTensors: rank must be an integer in \[1, 64\]/);
    expect(() => lowRankLayoutFromTensors([{ offset: -1, shape: [8, 8] }], 2)).toThrow(/tensors\[0\]\.offset/);
    expect(() => lowRankLayoutFromTensors([{ offset: 0, shape: [8, 1.5] }], 2)).toThrow(/tensors\[0\]\.shape\[1\]/);
    expect(() => lowRankLayoutFromTensors([{ offset: 0, shape: [8, 8] }, { offset: 10, shape: [8, 8] }], 2)).toThrow(
      /lowRankLayoutFromTensors: result\.matrices\[1\]\.offset must be >= 64/,
    );
  });
});
