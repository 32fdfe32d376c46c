/**
 * Record-level DP on the agent's model: per-example losses from the same forward pass as the mean, and the
 * clipped, noised g of a task on the in-process and worker backends (weights restored exactly afterwards).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { WorkerBackend } from '../../../edge-agent/worker-backend.js';
import { feedsForBatch } from '../../../edge-agent/batch-feeds.js';
import { createTrainableSession, loadDefaultModel, prepareModel, type PreparedModel } from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { noise } from '../../../shared/noise/index.js';

const size = 24;
const batch = {
  features: new Float32Array(size * 784).map((_, i) => ((i * 7) % 101) / 101),
  labels: BigInt64Array.from({ length: size }, (_, i) => BigInt((i * 3) % 10)),
  size,
  shape: [size, 784],
};
const seeds = [11n, 12n, 13n, 14n];
const epsilon = 1e-3;

let prepared: PreparedModel;
beforeAll(async () => {
  prepared = await loadDefaultModel();
});

describe(`record-level DP evaluation (${noise.kind})`, () => {
  it('gives per-example cross-entropy whose mean is the loss of the same run', async () => {
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    try {
      const feeds = feedsForBatch(prepared.manifest, batch);
      const { loss, perExample } = await session.runPerExample(feeds);
      expect(perExample.length).toBe(size);
      expect([...perExample].every((l) => l >= 0 && Number.isFinite(l))).toBe(true);
      const mean = perExample.reduce((a, b) => a + b, 0) / size;
      expect(Math.abs(mean - loss)).toBeLessThan(1e-5 * (1 + loss));
      expect((await session.run(feeds)).loss).toBe(loss);
      // The examples differ: a per-example output, not the mean repeated.
      expect(new Set(perExample).size).toBeGreaterThan(1);
    } finally {
      await session.release();
    }
  });

  it('refuses per-example losses on a model without a cross-entropy head', async () => {
    const none = prepareModel(buildMlp({ sizes: [784, 8, 10], seed: 1 }).bytes, { loss: 'none' });
    const session = await createTrainableSession(none, { intraOpThreads: 1 });
    try {
      await expect(session.runPerExample(feedsForBatch(none.manifest, { ...batch, labels: new BigInt64Array(0) }))).rejects.toThrow(/cross-entropy/);
    } finally {
      await session.release();
    }
  });

  describe.each(['in-process', 'worker'] as const)('on the %s backend', (kind) => {
    let backend: InProcessBackend | WorkerBackend;
    beforeAll(async () => {
      backend = kind === 'worker' ? await WorkerBackend.start(prepared, { intraOpThreads: 1 }) : await InProcessBackend.create(prepared, noise, { intraOpThreads: 1 });
    });
    afterAll(async () => {
      await backend?.close();
    });

    it('with a clip no example reaches and negligible noise, g is the plain estimate', async () => {
      const before = await backend.sha256();
      const plain = await backend.evaluate(seeds, epsilon, batch);
      const dp = await backend.evaluate(seeds, epsilon, batch, undefined, { clip: 1e9, noiseMultiplier: 1e-15, batchSize: size });
      expect(await backend.sha256()).toBe(before);
      dp.forEach((e, k) => {
        expect(e.seed).toBe(plain[k]!.seed);
        expect(e.lossPlus).toBe(plain[k]!.lossPlus);
        expect(e.lossMinus).toBe(plain[k]!.lossMinus);
        // Float32 per-example differences summed against the difference of float32 means.
        expect(Math.abs(e.g - plain[k]!.g)).toBeLessThan(0.02 * Math.abs(plain[k]!.g) + 0.05);
      });
    });

    it('clips each example to C/√k and divides by the task batch size', async () => {
      const clip = 0.5;
      const dp = await backend.evaluate(seeds, epsilon, batch, undefined, { clip, noiseMultiplier: 1e-15, batchSize: 32 });
      for (const e of dp) expect(Math.abs(e.g)).toBeLessThanOrEqual((clip / Math.sqrt(seeds.length)) * (size / 32) + 1e-9);
      // Most examples' projected gradients exceed 0.25 on this model: clipping binds, so g sits near the bound.
      expect(Math.max(...dp.map((e) => Math.abs(e.g)))).toBeGreaterThan(0.05);
    });

    it('adds fresh noise every time', async () => {
      const a = await backend.evaluate(seeds, epsilon, batch, undefined, { clip: 1, noiseMultiplier: 1, batchSize: size });
      const b = await backend.evaluate(seeds, epsilon, batch, undefined, { clip: 1, noiseMultiplier: 1, batchSize: size });
      expect(a.map((e) => e.g)).not.toEqual(b.map((e) => e.g));
      expect(a.map((e) => e.lossPlus)).toEqual(b.map((e) => e.lossPlus));
    });
  });
});
