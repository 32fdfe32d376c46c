import { describe, expect, it } from 'vitest';
import { noise } from '../../../shared/noise/index.js';
import { correlation, ksStatistic, moments, normalCdf } from '../../helpers/stats.js';

// Bounds are statistical, chosen so a correct generator fails with probability well below 1e-6 per check:
// the mean within 5.5 standard errors, the variance within 5.5 standard errors (√(2/n)), KS D below the
// α = 1e-6 critical value √(−ln(α/2)/(2n)) ≈ 2.63/√n.
const N = 1 << 20;
const kolmogorovCritical = (n: number): number => Math.sqrt(-Math.log(1e-6 / 2) / (2 * n));

describe(`noise distribution (${noise.kind})`, () => {
  for (const seed of [1n, 0xdeadbeefcafef00dn, 2n ** 64n - 1n]) {
    it(`Gaussian z for seed ${seed} has N(0,1) moments and passes Kolmogorov–Smirnov`, () => {
      const z = new Float32Array(N);
      noise.sample(z, seed, { offset: 12345 });
      const m = moments(z);
      expect(Math.abs(m.mean)).toBeLessThan(5.5 / Math.sqrt(N));
      expect(Math.abs(m.variance - 1)).toBeLessThan(5.5 * Math.sqrt(2 / N));
      expect(Math.abs(m.skewness)).toBeLessThan(5.5 * Math.sqrt(6 / N));
      expect(Math.abs(m.kurtosis - 3)).toBeLessThan(5.5 * Math.sqrt(24 / N));
      expect(ksStatistic(z, normalCdf)).toBeLessThan(kolmogorovCritical(N));
    });
  }

  it('agrees with the textbook Box–Muller in double precision (libm log/cos/sin) to float32 accuracy', () => {
    // The contract's polynomials must be accurate, not only reproducible: recompute each value from the raw
    // Philox words with Math.log/cos/sin and compare.
    const seed = 0x0123456789abcdefn;
    const z = new Float32Array(1 << 16);
    noise.sample(z, seed);
    let worst = 0;
    for (let block = 0; block < z.length / 4; block++) {
      const w = noise.philox([block, 0, 0, 0], [Number(seed & 0xffffffffn), Number(seed >> 32n)]);
      for (const pair of [0, 1]) {
        const u = ((w[2 * pair]! >>> 8) + 1) / 2 ** 24;
        const v = w[2 * pair + 1]! >>> 8;
        // θ = (v + 0.5)/2^24 · 2π: the contract's octant + offset split is exactly this angle.
        const angle = ((v + 0.5) / 2 ** 24) * 2 * Math.PI;
        const r = Math.sqrt(-2 * Math.log(u));
        worst = Math.max(
          worst,
          Math.abs(z[4 * block + 2 * pair]! - r * Math.cos(angle)),
          Math.abs(z[4 * block + 2 * pair + 1]! - r * Math.sin(angle)),
        );
      }
    }
    expect(worst).toBeLessThan(2e-6);
  });

  it('Gaussian tails match N(0,1) beyond 2, 3 and 4 sigma', () => {
    const z = new Float32Array(N * 4);
    noise.sample(z, 42n);
    for (const k of [2, 3, 4]) {
      let count = 0;
      for (const v of z) if (Math.abs(v) > k) count++;
      const p = 2 * (1 - normalCdf(k));
      const expected = p * z.length;
      expect(Math.abs(count - expected)).toBeLessThan(6 * Math.sqrt(expected * (1 - p)) + 1);
    }
  });

  it('neighbouring elements, the cos/sin halves of one pair, and different seeds are uncorrelated', () => {
    const a = new Float32Array(N);
    const b = new Float32Array(N);
    noise.sample(a, 7n);
    noise.sample(b, 8n);
    const bound = 5.5 / Math.sqrt(N);
    expect(Math.abs(correlation(a, b))).toBeLessThan(bound);
    expect(Math.abs(correlation(a.subarray(0, N - 1), a.subarray(1)))).toBeLessThan(bound);
    expect(Math.abs(correlation(a.subarray(0, N - 4), a.subarray(4)))).toBeLessThan(bound);
    // Squares of a Box–Muller pair share the radius, so they are the sensitive place for dependence.
    const evens = new Float64Array(N / 2);
    const odds = new Float64Array(N / 2);
    for (let i = 0; i < N / 2; i++) {
      evens[i] = a[2 * i]! * a[2 * i + 1]!;
      odds[i] = a[2 * i]! ** 2 - a[2 * i + 1]! ** 2;
    }
    expect(Math.abs(moments(evens).mean)).toBeLessThan(5.5 / Math.sqrt(N / 2));
    expect(Math.abs(moments(odds).mean)).toBeLessThan(5.5 * Math.sqrt(2) / Math.sqrt(N / 2));
  });

  it('Rademacher z is ±1 with balanced signs and no correlation between neighbours', () => {
    const z = new Float32Array(N);
    noise.sample(z, 99n, { distribution: 'rademacher', offset: 3 });
    let plus = 0;
    let other = 0;
    for (const v of z) {
      if (v === 1) plus++;
      else if (v !== -1) other++;
    }
    expect(other).toBe(0);
    expect(Math.abs(plus - N / 2)).toBeLessThan(5.5 * Math.sqrt(N / 4));
    expect(Math.abs(correlation(z.subarray(0, N - 1), z.subarray(1)))).toBeLessThan(5.5 / Math.sqrt(N));
    expect(Math.abs(correlation(z.subarray(0, N - 32), z.subarray(32)))).toBeLessThan(5.5 / Math.sqrt(N));
  });
});
