import { describe, expect, it } from 'vitest';
import { baselineMismatch, checkEstimatorSeeds, estimatorSchema, forwardGradients, impliedG } from '../../../shared/optim/estimator.js';
import { MezoEvaluator, coefficientFor } from '../../../edge-agent/mezo-evaluator.js';
import { MemorySlabCheckpoint } from '../../../edge-agent/slab-checkpoint.js';
import { noise } from '../../../shared/noise/index.js';
import { expectSameBits } from '../../helpers/bits.js';
import { quadratic } from '../../helpers/quadratic-loss.js';

describe('estimator arithmetic', () => {
  it('forward: g_k = (L_k − mean) / ε · q / (q − 1), and the coordinator recovers g and the baseline from the losses', () => {
    const losses = [1.25, 0.75, 1.5, 0.5];
    const { g, baseline } = forwardGradients(losses, 0.01);
    expect(baseline).toBe(1);
    expect(g).toEqual([0.25, -0.25, 0.5, -0.5].map((d) => (d / 0.01) * (4 / 3)));
    const minus = losses.map(() => baseline);
    expect(baselineMismatch(losses, minus)).toBe(-1);
    losses.forEach((l, k) => expect(impliedG('forward', l, baseline, 0.01, 4)).toBeCloseTo(g[k]!, 9));
    expect(baselineMismatch(losses, [1, 1, 1.001, 1])).toBe(2);
    expect(impliedG('central', 1.5, 0.5, 0.01, 1)).toBeCloseTo(50, 9);
  });

  it('refuses what cannot work, naming the field', () => {
    expect(() => forwardGradients([1], 1e-3)).toThrow(/at least 2 losses/);
    expect(() => checkEstimatorSeeds('forward', 1, 'strategy.seedsPerAgent')).toThrow(/strategy\.seedsPerAgent: .*at least 2 seeds/);
    expect(() => checkEstimatorSeeds('central', 1, 'x')).not.toThrow();
    expect(estimatorSchema.safeParse('backward').success).toBe(false);
  });
});

describe(`forward estimator in the evaluator (${noise.kind})`, () => {
  it('one loss per seed at θ + εz, the weights restored bit for bit, and Σ g·z converging to the gradient', async () => {
    const d = 48;
    const { loss, gradient } = quadratic(d);
    const slab = new Float32Array(d);
    noise.sample(slab, 5n);
    const original = slab.slice();
    const checkpoint = new MemorySlabCheckpoint();
    const evaluator = new MezoEvaluator(noise, slab, 'gaussian', checkpoint);
    const seen: Float32Array[] = [];
    const seeds = Array.from({ length: 4096 }, (_, s) => BigInt(s) + 77n);
    const results = await evaluator.evaluate(
      seeds,
      1e-3,
      async () => {
        seen.push(slab.slice());
        return loss(slab);
      },
      undefined,
      'forward',
    );
    expect(seen).toHaveLength(seeds.length); // one forward pass per seed, not two
    expectSameBits(slab, original, 'after a forward evaluation');
    // The first pass ran at θ + εz(seed 0), exactly as the noise engine perturbs.
    const plus = original.slice();
    noise.perturb(plus, seeds[0]!, 1e-3);
    expectSameBits(seen[0]!, plus, 'the weights of the first pass');
    const baseline = results.reduce((a, r) => a + r.lossPlus, 0) / results.length;
    for (const r of results) {
      expect(r.valid).toBe(true);
      expect(r.lossMinus).toBe(results[0]!.lossMinus);
      expect(r.g).toBeCloseTo(impliedG('forward', r.lossPlus, r.lossMinus, 1e-3, seeds.length), 6);
    }
    expect(results[0]!.lossMinus).toBeCloseTo(baseline, 12);
    // E[(1/(q−1)) Σ (L_k − L̄) z_k / ε] = ∇L: the estimate's cosine with the gradient is what 4096 directions give.
    const estimate = new Float64Array(d);
    const z = new Float32Array(d);
    for (const r of results) {
      noise.sample(z, r.seed);
      for (let i = 0; i < d; i++) estimate[i] = estimate[i]! + r.g * z[i]!;
    }
    const truth = gradient(original);
    let dot = 0;
    let ne = 0;
    let nt = 0;
    for (let i = 0; i < d; i++) {
      dot += estimate[i]! * truth[i]!;
      ne += estimate[i]! ** 2;
      nt += truth[i]! ** 2;
    }
    expect(dot / Math.sqrt(ne * nt)).toBeGreaterThan(0.95);
    // And its scale is the gradient's (unbiased, not only aligned): the projection onto ∇L over |∇L|² ≈ 1.
    expect(dot / nt / seeds.length).toBeGreaterThan(0.9);
    expect(dot / nt / seeds.length).toBeLessThan(1.1);
  });

  it('a fused update applies every valid term after the last seed; a non-finite loss invalidates the task', async () => {
    const slab = new Float32Array(2000);
    noise.sample(slab, 8n);
    const original = slab.slice();
    const evaluator = new MezoEvaluator(noise, slab, 'gaussian', new MemorySlabCheckpoint());
    const rule = { lr: 0.1, divisor: 3 };
    const results = await evaluator.evaluate([1n, 2n, 3n], 1e-3, async () => slab[3]! + slab[9]!, rule, 'forward');
    const expected = original.slice();
    noise.accumulate(expected, results.map((r) => ({ seed: r.seed, coeff: coefficientFor(r.g, rule) })));
    expectSameBits(slab, expected, 'after the fused forward update');
    let calls = 0;
    const bad = await evaluator.evaluate([4n, 5n], 1e-3, async () => (calls++ === 0 ? Number.NaN : 1), rule, 'forward');
    expect(bad.every((r) => !r.valid && Number.isNaN(r.g))).toBe(true);
    expectSameBits(slab, expected, 'nothing applied for an invalid task');
  });

  it('refuses one seed, record-level DP and an unknown estimator before touching the weights', async () => {
    const slab = new Float32Array(16).fill(1);
    const evaluator = new MezoEvaluator(noise, slab);
    await expect(evaluator.evaluate([1n], 1e-3, async () => 1, undefined, 'forward')).rejects.toThrow(/at least 2 seeds per task/);
    await expect(evaluator.evaluate([1n, 2n], 1e-3, async () => 1, undefined, 'sideways' as never)).rejects.toThrow(/estimator must be 'central' or 'forward'/);
    await expect(
      evaluator.evaluateRecordDp([1n, 2n], 1e-3, async () => ({ loss: 1, perExample: new Float32Array([1]) }) as never, { clip: 1, noiseMultiplier: 1 }, 1, undefined, 'forward'),
    ).rejects.toThrow(/record-level DP needs the 'central' estimator/);
    expect(Array.from(slab).every((v) => v === 1)).toBe(true);
  });
});
