import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { noise } from '../../../shared/noise/index.js';
import { bitsOf, expectSameBits } from '../../helpers/bits.js';

interface GoldenVector {
  distribution: 'gaussian' | 'rademacher';
  seed: string;
  offset: number;
  bits: string[];
}
const golden = JSON.parse(readFileSync(new URL('./golden-vectors.json', import.meta.url), 'utf8')) as {
  count: number;
  vectors: GoldenVector[];
};

const hex = (words: Uint32Array): string[] => Array.from(words, (w) => w.toString(16).padStart(8, '0'));

/** A slab with varied, non-zero contents (so the add itself is exercised), from a simple LCG. */
function randomSlab(length: number, seed: number): Float32Array {
  const slab = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    slab[i] = (state / 2 ** 32 - 0.5) * 0.08;
  }
  return slab;
}

describe(`noise contract (${noise.kind})`, () => {
  it('reproduces the three Philox4x32-10 known answers (Random123)', () => {
    expect(hex(noise.philox([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const ones = 0xffffffff;
    expect(hex(noise.philox([ones, ones, ones, ones], [ones, ones]))).toEqual([
      '408f276d',
      '41c83b0e',
      'a20bc7c6',
      '6d5451fd',
    ]);
    expect(hex(noise.philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual([
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
      noise.sample(z, v.seed, { offset: v.offset, distribution: v.distribution });
      expect(hex(bitsOf(z)), `${v.distribution} seed ${v.seed} offset ${v.offset}`).toEqual(v.bits);
    }
  });

  it('accepts one seed as bigint, number or decimal string with identical results', () => {
    const a = new Float32Array(33);
    const b = new Float32Array(33);
    const c = new Float32Array(33);
    noise.sample(a, 123456789012345n);
    noise.sample(b, 123456789012345);
    noise.sample(c, '123456789012345');
    expectSameBits(b, a);
    expectSameBits(c, a);
  });

  for (const distribution of ['gaussian', 'rademacher'] as const) {
    it(`${distribution}: any sub-range equals the same slice of a full generation (random access)`, () => {
      const full = new Float32Array(5000);
      noise.sample(full, 77n, { offset: 1000, distribution });
      for (const [from, to] of [
        [0, 1],
        [1, 2],
        [3, 130],
        [127, 129],
        [999, 4001],
        [4999, 5000],
      ] as const) {
        const part = new Float32Array(to - from);
        noise.sample(part, 77n, { offset: 1000 + from, distribution });
        expectSameBits(part, full.slice(from, to));
        // The same through start/end on the full-length slab.
        const ranged = new Float32Array(5000);
        noise.perturb(ranged, 77n, 1, { offset: 1000, start: from, end: to, distribution });
        expectSameBits(ranged.slice(from, to), full.slice(from, to));
        expect(ranged.slice(0, from).every((x) => x === 0) && ranged.slice(to).every((x) => x === 0)).toBe(true);
      }
    });

    it(`${distribution}: perturb is slab[i] = f32(slab[i] + f32(scale · z[i])) on non-zero slabs`, () => {
      const n = 4099;
      const z = new Float32Array(n);
      noise.sample(z, 5n, { offset: 17, distribution });
      const slab = randomSlab(n, 1);
      const expected = new Float32Array(n);
      const scale = Math.fround(1e-3);
      for (let i = 0; i < n; i++) expected[i] = slab[i]! + Math.fround(scale * z[i]!);
      noise.perturb(slab, 5n, 1e-3, { offset: 17, distribution });
      expectSameBits(slab, expected);
    });

    it(`${distribution}: accumulate with 1, 7 and 64 entries equals the entries applied as successive perturbs`, () => {
      for (const count of [1, 7, 64]) {
        const entries = Array.from({ length: count }, (_, k) => ({
          seed: BigInt(k) * 0x9e3779b97f4a7c15n % 2n ** 64n,
          coeff: (k % 2 ? -1 : 1) * 1e-4 * (k + 1),
        }));
        const length = 3001 + count;
        const fused = randomSlab(length, count);
        const sequential = fused.slice();
        noise.accumulate(fused, entries, { offset: 9, distribution });
        for (const e of entries) noise.perturb(sequential, e.seed, e.coeff, { offset: 9, distribution });
        expectSameBits(fused, sequential);
      }
    });
  }

  it('distributions use separate streams: the Rademacher signs are not the Gaussian signs', () => {
    const g = new Float32Array(4096);
    const r = new Float32Array(4096);
    noise.sample(g, 3n);
    noise.sample(r, 3n, { distribution: 'rademacher' });
    let agree = 0;
    for (let i = 0; i < g.length; i++) if (Math.sign(g[i]!) === r[i]) agree++;
    expect(Math.abs(agree - g.length / 2)).toBeLessThan(5.5 * Math.sqrt(g.length / 4));
  });

  it('a subarray view with a byte offset is perturbed in place, not the bytes before it', () => {
    const backing = randomSlab(1000, 2);
    const original = backing.slice();
    const view = backing.subarray(100, 900);
    noise.perturb(view, 11n, 0.5, { offset: 100 });
    const whole = original.slice();
    noise.perturb(whole, 11n, 0.5);
    expectSameBits(backing.slice(0, 100), original.slice(0, 100));
    expectSameBits(backing.slice(900), original.slice(900));
    expectSameBits(backing.slice(100, 900), whole.slice(100, 900));
  });
});
