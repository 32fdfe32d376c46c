/** Statistics helpers for the noise tests (double precision, test-side only). */

/** Standard normal CDF Φ(x) = erfc(−x/√2)/2. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/**
 * Complementary error function in double precision: the Maclaurin series of erf where it converges quickly
 * (|x| < 2.5), and the continued fraction erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) beyond.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  let result: number;
  if (z < 2.5) {
    // erf(z) = 2/√π Σ (−1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    result = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Evaluate the continued fraction from the tail up; 200 levels are far beyond what z ≥ 2.5 needs.
    let fraction = z;
    for (let k = 200; k >= 1; k--) fraction = z + k / 2 / fraction;
    result = Math.exp(-z * z) / Math.sqrt(Math.PI) / fraction;
  }
  return x >= 0 ? result : 2 - result;
}

export interface Moments {
  mean: number;
  variance: number;
  skewness: number;
  kurtosis: number;
}

export function moments(values: ArrayLike<number>): Moments {
  const n = values.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const mean = sum / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i]! - mean;
    const d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean, variance: m2, skewness: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

/** Kolmogorov–Smirnov statistic D of the sample against a continuous CDF. */
export function ksStatistic(values: ArrayLike<number>, cdf: (x: number) => number): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const c = cdf(sorted[i]!);
    d = Math.max(d, c - i / n, (i + 1) / n - c);
  }
  return d;
}

/** Pearson correlation of a[i] and b[i]. */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    sa += a[i]!;
    sb += b[i]!;
  }
  const ma = sa / n;
  const mb = sb / n;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  return cov / Math.sqrt(va * vb);
}
