import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBackend, type MezoBackend } from '../../../edge-agent/mezo-backend.js';
import { WorkerBackend } from '../../../edge-agent/worker-backend.js';
import { prepareModel, slabSha256, type PreparedModel } from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { noise } from '../../../shared/noise/index.js';

let prepared: PreparedModel;
const batchSize = 256;
const batch = {
  features: new Float32Array(batchSize * 784).map((_, i) => (i % 97) / 97),
  labels: BigInt64Array.from({ length: batchSize }, (_, i) => BigInt(i % 10)),
  size: batchSize,
  shape: [batchSize, 784],
};

beforeAll(() => {
  prepared = prepareModel(buildMlp({ sizes: [784, 1024, 1024, 10], seed: 9 }).bytes);
});

/** Counts 1 ms timer ticks on this thread while `work` runs. */
async function ticksDuring(work: () => Promise<unknown>): Promise<number> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await new Promise((r) => setTimeout(r, 5));
  ticks = 0;
  await work();
  clearInterval(timer);
  return ticks;
}

describe(`worker backend (${noise.kind})`, () => {
  let worker: WorkerBackend;
  let local: InProcessBackend;
  beforeAll(async () => {
    worker = await WorkerBackend.start(prepared, { intraOpThreads: 1 });
    local = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1 });
  });
  afterAll(async () => {
    await worker.close();
    await local.close();
  });

  it('keeps the caller\'s event loop free while the model computes', async () => {
    const seeds = Array.from({ length: 6 }, (_, i) => BigInt(i + 1));
    const started = performance.now();
    const workerTicks = await ticksDuring(() => worker.evaluate(seeds, 1e-3, batch));
    const elapsed = performance.now() - started;
    // The same work in process, so both backends' weights carry the same restore drift for the next test.
    await local.evaluate(seeds, 1e-3, batch);
    // Twelve forward passes of a 1.9 M-parameter MLP at batch 256 take tens of milliseconds: a free loop
    // ticks many times meanwhile. (The in-process backend runs the same work on this thread.)
    expect(elapsed).toBeGreaterThan(20);
    expect(workerTicks).toBeGreaterThan(elapsed / 10);
  });

  it('computes the same losses and the same weights as the in-process backend', async () => {
    const seeds = [11n, 12n];
    const a = await worker.evaluate(seeds, 1e-3, batch, { lr: 1e-4 });
    const b = await local.evaluate(seeds, 1e-3, batch, { lr: 1e-4 });
    expect(a).toEqual(b);
    await worker.apply([{ seed: 5n, coeff: 1e-3 }]);
    await local.apply([{ seed: 5n, coeff: 1e-3 }]);
    expect(await worker.sha256()).toBe(slabSha256(local.slab));
    expect(slabSha256(await worker.snapshot())).toBe(await worker.sha256());
    expect(await worker.run(batch)).toEqual(await local.run(batch));
  });

  it('loads new weights (a snapshot) into the model and its checkpoint, and rejects bad ones unchanged', async () => {
    const replacement = prepared.slab.map((v, i) => v + (i % 3) * 1e-3);
    for (const backend of [worker, local] as MezoBackend[]) {
      const before = await backend.sha256();
      await expect(backend.load(replacement.subarray(1))).rejects.toThrow(/load: slab has \d+ values, the model needs/);
      const bad = replacement.slice();
      bad[5] = Number.NaN;
      await expect(backend.load(bad)).rejects.toThrow(/load: slab\[5\] is not finite/);
      expect(await backend.sha256()).toBe(before);
      await backend.load(replacement);
      expect(await backend.sha256()).toBe(slabSha256(replacement));
      // An evaluation restores to the loaded weights (the checkpoint was replaced too).
      await backend.evaluate([3n], 1e-3, batch);
      expect(await backend.sha256()).toBe(slabSha256(replacement));
    }
  });

  it('passes errors back with their name and message, and keeps serving', async () => {
    const backends: MezoBackend[] = [worker, local];
    for (const backend of backends) {
      await expect(backend.evaluate([-1n], 1e-3, batch)).rejects.toThrow(/evaluate: seeds\[0\]\.seed/);
      const short = { ...batch, features: batch.features.subarray(0, batchSize * 783) };
      await expect(backend.run(short)).rejects.toMatchObject({ name: 'BatchShapeError' });
      expect((await backend.run(batch)).loss).toBeGreaterThan(0);
    }
  });
});
