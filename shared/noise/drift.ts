/**
 * Measures how far the MeZO perturb–restore sequence (+εz, −2εz, +εz) leaves a slab from where it started.
 * Float32 rounding makes the restore inexact (docs/noise.md, "Drift"); this quantifies it for tests and benches.
 */
import type { NoiseEngine, Seed } from './engine.js';

export interface DriftReport {
  elements: number;
  /** Fraction of elements whose bits differ from the original after the restore. */
  inexactFraction: number;
  /** Largest |restored − original| in units of the float32 spacing at |original| + 2ε|z| (the largest value touched). */
  maxUlps: number;
  /** Largest |restored − original|. */
  maxAbsError: number;
  /** Root-mean-square of restored − original. */
  rmsError: number;
}

/** Spacing of float32 values at magnitude x (2^-149 for subnormals). */
export function float32Ulp(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

export function measureRestoreDrift(engine: NoiseEngine, weights: Float32Array, seed: Seed, epsilon: number): DriftReport {
  const slab = weights.slice();
  engine.perturb(slab, seed, epsilon);
  engine.perturb(slab, seed, -2 * epsilon);
  engine.perturb(slab, seed, epsilon);
  const z = new Float32Array(weights.length);
  engine.sample(z, seed);
  let inexact = 0;
  let maxUlps = 0;
  let maxAbsError = 0;
  let sumSquares = 0;
  for (let i = 0; i < weights.length; i++) {
    const error = slab[i]! - weights[i]!;
    if (error !== 0 || Object.is(slab[i], -0) !== Object.is(weights[i], -0)) inexact++;
    const magnitude = Math.abs(weights[i]!) + 2 * Math.abs(epsilon * z[i]!);
    maxUlps = Math.max(maxUlps, Math.abs(error) / float32Ulp(magnitude));
    maxAbsError = Math.max(maxAbsError, Math.abs(error));
    sumSquares += error * error;
  }
  return {
    elements: weights.length,
    inexactFraction: inexact / weights.length,
    maxUlps,
    maxAbsError,
    rmsError: Math.sqrt(sumSquares / weights.length),
  };
}
