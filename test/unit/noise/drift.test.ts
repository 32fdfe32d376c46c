import { describe, expect, it } from 'vitest';
import { noise } from '../../../shared/noise/index.js';
import { measureRestoreDrift } from '../../../shared/noise/drift.js';
import { expectSameBits } from '../../helpers/bits.js';

describe(`perturb–restore drift (${noise.kind})`, () => {
  // Weights like a trained layer's, N(0, 0.02), and MeZO's usual ε = 1e-3.
  const weights = new Float32Array(1 << 20);
  noise.sample(weights, 2024n);
  for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! * 0.02;

  it('+εz, −2εz, +εz leaves a bounded error: at most 2 ulps of the largest value touched', () => {
    const report = measureRestoreDrift(noise, weights, 31337n, 1e-3);
    // About half of the elements are off by a last-bit rounding; none by more than the three roundings allow.
    expect(report.inexactFraction).toBeGreaterThan(0.2);
    expect(report.inexactFraction).toBeLessThan(0.7);
    expect(report.maxUlps).toBeLessThanOrEqual(2);
    expect(report.rmsError).toBeLessThan(1e-8);
  });

  it('is deterministic: the same sequence twice gives the same bits', () => {
    const a = weights.slice();
    const b = weights.slice();
    for (const slab of [a, b]) {
      noise.perturb(slab, 5n, 1e-3);
      noise.perturb(slab, 5n, -2e-3);
      noise.perturb(slab, 5n, 1e-3);
    }
    expectSameBits(a, b, 'two identical sequences');
  });

  it('a zero scale is an exact no-op', () => {
    const slab = weights.slice();
    noise.perturb(slab, 9n, 0);
    expectSameBits(slab, weights, 'zero-scale perturb');
  });
});
