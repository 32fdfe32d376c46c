import { describe, expect, it } from 'vitest';
import { fnv1a, fnv1aUpdate, SeededRng } from '../../../shared/data/index.js';

const words = (rng: SeededRng, n: number): number[] => Array.from({ length: n }, () => rng.nextUint32());

describe('SeededRng', () => {
  it('matches the xoshiro128** reference outputs from state (1, 2, 3, 4)', () => {
    expect(words(SeededRng.fromState([1, 2, 3, 4]), 10)).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804,
    ]);
  });

  it('seeds from splitmix64: seed 0 uses its first two published outputs as the state', () => {
    // splitmix64 from state 0 yields 0xE220A8397B1DCDAF, then 0x6E789E6AA1B965F4.
    const expected = SeededRng.fromState([0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
    expect(words(new SeededRng(0), 16)).toEqual(words(expected, 16));
  });

  it('pins the first words and an epoch permutation (a change here breaks every recorded run)', () => {
    expect(words(new SeededRng(0), 3).map((w) => w.toString(16))).toEqual(['dec9045d', '9a089d75', 'ab77d362']);
    expect(Array.from(new SeededRng(42, 'shuffle', 0).permutation(10))).toEqual([9, 6, 0, 1, 7, 3, 4, 2, 5, 8]);
  });

  it('accepts every seed form: number, bigint and decimal string name the same stream', () => {
    const a = words(new SeededRng(123456789, 'x'), 8);
    expect(words(new SeededRng(123456789n, 'x'), 8)).toEqual(a);
    expect(words(new SeededRng('123456789', 'x'), 8)).toEqual(a);
    expect(words(new SeededRng(2n ** 64n - 1n), 4)).not.toEqual(words(new SeededRng(0), 4));
  });

  it('separates streams by tag and by seed', () => {
    const base = words(new SeededRng(7, 'shuffle', 0), 8);
    expect(words(new SeededRng(7, 'shuffle', 1), 8)).not.toEqual(base);
    expect(words(new SeededRng(7, 'dirichlet', 0), 8)).not.toEqual(base);
    expect(words(new SeededRng(8, 'shuffle', 0), 8)).not.toEqual(base);
    expect(words(new SeededRng(7, 'shuffle', 0), 8)).toEqual(base);
  });

  it('rejects bad seeds and tags, naming them', () => {
    expect(() => new SeededRng(-1)).toThrow(/seed must be a non-negative safe integer/);
    expect(() => new SeededRng(1, -2)).toThrow(/stream tag 0 must be a string or a non-negative safe integer, got -2/);
    expect(() => new SeededRng(1).nextBelow(0)).toThrow(/nextBelow: n must be an integer in \[1, 2\^32\], got 0/);
    expect(() => new SeededRng(1).gamma(0)).toThrow(/logGamma: shape must be a finite number > 0, got 0/);
    expect(() => SeededRng.fromState([0, 0, 0, 0])).toThrow(/must not be all zero/);
  });

  it('draws bounded integers uniformly (chi-square over 10 bins)', () => {
    const rng = new SeededRng(99);
    const bins = new Array<number>(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) bins[rng.nextBelow(10)]! += 1;
    expect(bins.reduce((a, c) => a + c, 0)).toBe(n);
    const chi2 = bins.reduce((a, c) => a + (c - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.001 for 9 degrees of freedom
  });

  it('produces floats in [0, 1) and standard normals with the right moments', () => {
    const rng = new SeededRng(5);
    let sum = 0;
    let sumSq = 0;
    const n = 50_000;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      const z = rng.normal();
      sum += z;
      sumSq += z * z;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.03);
  });

  it('samples Gamma(shape) with mean ≈ shape, including shapes below 1 (Marsaglia–Tsang with boost)', () => {
    for (const shape of [0.05, 0.5, 1, 3.5, 20]) {
      const rng = new SeededRng(11, shape * 100);
      let sum = 0;
      const n = 20_000;
      for (let i = 0; i < n; i++) sum += rng.gamma(shape);
      // sd of the mean is sqrt(shape / n); allow 5 of them plus a little.
      expect(Math.abs(sum / n - shape)).toBeLessThan(5 * Math.sqrt(shape / n) + 1e-3);
    }
  });

  it('draws Dirichlet vectors that sum to 1, even for α = 0.001', () => {
    const rng = new SeededRng(3);
    for (const alpha of [0.001, 0.1, 1, 100]) {
      const p = rng.dirichlet(new Array(10).fill(alpha));
      expect(p.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
      expect(p.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    }
    // Small α concentrates the mass: the largest share is near 1.
    const peaked = rng.dirichlet(new Array(10).fill(0.01));
    expect(Math.max(...peaked)).toBeGreaterThan(0.9);
  });

  it('makes true permutations', () => {
    const perm = new SeededRng(1, 'p').permutation(1000);
    expect(Array.from(perm).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(new SeededRng(1, 'p').permutation(0).length).toBe(0);
  });
});

describe('fnv1a', () => {
  it('matches the published FNV-1a 32-bit values', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes (same as hashing Buffer.from(text))', () => {
    const reference = (text: string): number => {
      let h = 0x811c9dc5;
      for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
      return h;
    };
    for (const text of ['héllo', '日本語', 'emoji 😀 ok', 'Ã©', '\u00ff\u0100\u07ff\u0800\uffff']) {
      expect(fnv1a(text)).toBe(reference(text));
    }
  });

  it('continues a hash: update(update(basis, a), b) = fnv1a(a + b)', () => {
    expect(fnv1aUpdate(fnv1a('w:'), 'viagra')).toBe(fnv1a('w:viagra'));
  });
});
