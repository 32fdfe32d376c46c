import { describe, expect, it } from 'vitest';
import { MezoEvaluator, coefficientFor } from '../../../edge-agent/mezo-evaluator.js';
import { noise } from '../../../shared/noise/index.js';
import { float32Ulp } from '../../../shared/noise/drift.js';
import { FileSlabCheckpoint } from '../../../edge-agent/file-slab-checkpoint.js';
import { MemorySlabCheckpoint } from '../../../edge-agent/slab-checkpoint.js';
import { expectSameBits } from '../../helpers/bits.js';
import { quadratic } from '../../helpers/quadratic-loss.js';

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

describe(`MeZO evaluator (${noise.kind})`, () => {
  for (const distribution of ['gaussian', 'rademacher'] as const) {
    it(`${distribution}: the mean of g·z over many seeds converges to the true gradient`, async () => {
      // For Gaussian z the estimator (1/S) Σ g_s z_s has E = ∇L and E|error|² = (d + 1)|∇L|²/S (Rademacher: d − 1),
      // so its cosine with ∇L is about 1/√(1 + (d + 1)/S). The test requires it within 0.03 of that at each S,
      // and above 0.97 at S = 4096 (d = 64), where the expectation is 0.992.
      const d = 64;
      const { loss, gradient } = quadratic(d);
      const slab = new Float32Array(d);
      noise.sample(slab, 11n);
      const trueGradient = gradient(slab);
      const evaluator = new MezoEvaluator(noise, slab, distribution);
      const estimate = new Float64Array(d);
      const z = new Float32Array(d);
      const checkpoints = new Map([
        [256, 0],
        [1024, 0],
        [4096, 0],
      ]);
      const seeds = Array.from({ length: 4096 }, (_, s) => BigInt(s) + 1000n);
      const results = await evaluator.evaluate(seeds, 1e-3, async () => loss(slab));
      results.forEach((r, s) => {
        expect(r.valid).toBe(true);
        noise.sample(z, r.seed, { distribution });
        for (let i = 0; i < d; i++) estimate[i] = estimate[i]! + r.g * z[i]!;
        if (checkpoints.has(s + 1)) checkpoints.set(s + 1, cosine(estimate, trueGradient));
      });
      for (const [samples, cos] of checkpoints) {
        const expected = 1 / Math.sqrt(1 + (d + (distribution === 'gaussian' ? 1 : -1)) / samples);
        expect(Math.abs(cos - expected), `cosine at S=${samples}: ${cos} vs ${expected}`).toBeLessThan(0.03);
      }
      expect(checkpoints.get(4096)!).toBeGreaterThan(0.97);
    });
  }

  it('restores the weights after each seed to within 1 ulp (the documented float32 drift)', async () => {
    const slab = new Float32Array(10_000);
    noise.sample(slab, 3n);
    for (let i = 0; i < slab.length; i++) slab[i] = slab[i]! * 0.02;
    const original = slab.slice();
    const evaluator = new MezoEvaluator(noise, slab);
    const seen: number[] = [];
    await evaluator.evaluate([1n, 2n, 3n], 1e-3, async () => {
      seen.push(slab[0]!);
      return 1;
    });
    expect(seen).toHaveLength(6);
    expect(seen[0]).not.toBe(original[0]);
    for (let i = 0; i < slab.length; i++) {
      expect(Math.abs(slab[i]! - original[i]!)).toBeLessThanOrEqual(3 * float32Ulp(Math.abs(original[i]!) + 2e-3 * 6));
    }
  });

  it('fuses an update into the restore pass: the result is the update applied to the weights', async () => {
    const slab = new Float32Array(5_000);
    noise.sample(slab, 4n);
    const original = slab.slice();
    const evaluator = new MezoEvaluator(noise, slab);
    const rule = { lr: 0.5, clip: 0.02, divisor: 2 };
    const [result] = await evaluator.evaluate([77n], 1e-3, async () => slab[10]!, rule);
    expect(result!.valid).toBe(true);
    const coeff = coefficientFor(result!.g, rule);
    expect(Math.abs(coeff)).toBeLessThanOrEqual(0.5 * 0.02 / 2);
    const expected = original.slice();
    noise.perturb(expected, 77n, coeff);
    let worst = 0;
    for (let i = 0; i < slab.length; i++) worst = Math.max(worst, Math.abs(slab[i]! - expected[i]!) / float32Ulp(Math.abs(expected[i]!) + 0.05));
    expect(worst).toBeLessThanOrEqual(3);
  });

  it('marks a non-finite loss invalid, skips its fused update, and still restores', async () => {
    const slab = new Float32Array(1000).fill(0.5);
    const evaluator = new MezoEvaluator(noise, slab);
    let calls = 0;
    const before = slab.slice();
    const results = await evaluator.evaluate([5n, 6n], 1e-3, async () => (calls++ === 1 ? Number.NaN : 1), { lr: 1 });
    expect(results.map((r) => r.valid)).toEqual([false, true]);
    expect(Number.isNaN(results[0]!.g)).toBe(true);
    // Both losses of seed 6 are 1, so g = 0 and its fused update is zero: the weights only carry restore drift.
    for (let i = 0; i < slab.length; i++) expect(Math.abs(slab[i]! - before[i]!)).toBeLessThanOrEqual(2 * float32Ulp(0.51));
  });

  it('restores the weights when the loss throws, and propagates the error', async () => {
    const slab = new Float32Array(1000).fill(0.25);
    const evaluator = new MezoEvaluator(noise, slab);
    let calls = 0;
    await expect(
      evaluator.evaluate([9n], 1e-3, async () => {
        if (calls++ === 1) throw new Error('session failed');
        return 1;
      }),
    ).rejects.toThrow('session failed');
    for (const v of slab) expect(Math.abs(v - 0.25)).toBeLessThanOrEqual(2 * float32Ulp(0.26));
  });

  it('never lets an update touch the slab while a loss evaluation is in flight', async () => {
    const slab = new Float32Array(100).fill(1);
    const evaluator = new MezoEvaluator(noise, slab);
    const snapshots: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const evaluation = evaluator.evaluate([1n], 1e-3, async () => {
      const before = slab[0]!;
      await gate;
      snapshots.push(before, slab[0]!);
      return 0;
    });
    const update = evaluator.apply([{ seed: 2n, coeff: 5 }]);
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all([evaluation, update]);
    // During each evaluation the weights did not move under the loss.
    expect(snapshots[0]).toBe(snapshots[1]);
    expect(snapshots[2]).toBe(snapshots[3]);
  });

  it('rejects bad arguments before touching the weights', async () => {
    const slab = new Float32Array(16).fill(1);
    const evaluator = new MezoEvaluator(noise, slab);
    await expect(evaluator.evaluate([1n], 0, async () => 1)).rejects.toThrow(/epsilon must be a positive finite number/);
    await expect(evaluator.evaluate([-1n], 1e-3, async () => 1)).rejects.toThrow(/evaluate: seeds\[0\]\.seed/);
    await expect(evaluator.apply([{ seed: 1n, coeff: Infinity }])).rejects.toThrow(/apply: terms\[0\]\.coeff/);
    expect(Array.from(slab).every((v) => v === 1)).toBe(true);
  });
});

describe(`MeZO evaluator with a checkpoint (${noise.kind})`, () => {
  for (const kind of ['file', 'memory'] as const) {
    it(`${kind}: restores the weights exactly, fuses updates exactly, and restores exactly after a failure`, async () => {
      const slab = new Float32Array(20_000);
      noise.sample(slab, 3n);
      for (let i = 0; i < slab.length; i++) slab[i] = slab[i]! * 0.02;
      const original = slab.slice();
      const checkpoint = kind === 'file' ? new FileSlabCheckpoint(slab.length) : new MemorySlabCheckpoint();
      const evaluator = new MezoEvaluator(noise, slab, 'gaussian', checkpoint);
      await evaluator.evaluate([1n, 2n, 3n], 1e-3, async () => slab[0]!);
      expectSameBits(slab, original, 'after evaluate');
      const rule = { lr: 1e-3 };
      const [result] = await evaluator.evaluate([4n], 1e-3, async () => slab[7]! * 100, rule);
      const expected = original.slice();
      noise.perturb(expected, 4n, coefficientFor(result!.g, rule));
      expectSameBits(slab, expected, 'after a fused update');
      let calls = 0;
      await expect(
        evaluator.evaluate([5n], 1e-3, async () => {
          if (calls++ === 1) throw new Error('boom');
          return 0;
        }),
      ).rejects.toThrow('boom');
      expectSameBits(slab, expected, 'after a failed evaluation');
      await evaluator.apply([{ seed: 6n, coeff: 0.5 }]);
      noise.perturb(expected, 6n, 0.5);
      await evaluator.evaluate([7n], 1e-3, async () => 1);
      expectSameBits(slab, expected, 'after apply and another evaluation');
      checkpoint.close();
    });
  }

  it('refuses to restore a slab of another size', () => {
    const checkpoint = new FileSlabCheckpoint(8);
    expect(() => checkpoint.save(new Float32Array(9))).toThrow(/slab has 9 values, the checkpoint 8/);
    checkpoint.close();
    expect(() => checkpoint.restore(new Float32Array(8))).toThrow(/is closed/);
    expect(() => new MemorySlabCheckpoint().restore(new Float32Array(2))).toThrow(/nothing of this size was saved/);
  });
});
