import { describe, expect, it } from 'vitest';
import { createTrainableSession, prepareModel } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { buildMlp, buildTransformer } from '../../../shared/model/zoo/index.js';
import { zooBatch } from './model-helpers.js';

describe('trainable session: weights are zero-copy views of the slab', () => {
  it('binds every trainable input to a subarray of the slab (same buffer, matching offset)', async () => {
    const zoo = buildMlp({ sizes: [10, 6, 3], seed: 21 });
    const prepared = prepareModel(zoo.bytes);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    for (const t of prepared.manifest.tensors) {
      const data = session.parameters.get(t.name)!.data as Float32Array;
      expect(data.buffer).toBe(prepared.slab.buffer);
      expect(data.byteOffset).toBe(prepared.slab.byteOffset + t.offset * 4);
      expect(data.length).toBe(t.length);
    }
    await session.release();
  });

  it('a perturbation written into the slab changes the next loss, and undoing it restores the loss exactly', async () => {
    const zoo = buildTransformer({ vocab: 40, dim: 8, heads: 2, layers: 1, seq: 4, classes: 3, seed: 22 });
    const prepared = prepareModel(zoo.bytes);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    const { data, labels } = zooBatch(zoo, 6);
    const feeds = { tokens: data, labels };
    const tensorsBefore = [...session.parameters.values()];

    const base = (await session.run(feeds)).loss;
    noise.perturb(session.slab, 42n, 1e-2);
    const plus = (await session.run(feeds)).loss;
    noise.perturb(session.slab, 42n, -2e-2);
    const minus = (await session.run(feeds)).loss;
    noise.perturb(session.slab, 42n, 1e-2);
    const restored = (await session.run(feeds)).loss;

    expect(plus).not.toBe(base);
    expect(minus).not.toBe(base);
    expect(minus).not.toBe(plus);
    // The same tensor objects served every run: nothing was re-created.
    expect([...session.parameters.values()]).toEqual(tensorsBefore);
    // θ + εz − 2εz + εz is not always θ bit for bit in float32, so compare the restored loss closely.
    expect(restored).toBeCloseTo(base, 6);

    // A fresh session on a copy of the perturbed slab agrees with the in-place one: the first never ran stale weights.
    noise.perturb(session.slab, 7n, 5e-2);
    const inPlace = (await session.run(feeds)).loss;
    const fresh = await createTrainableSession(prepared, { slab: Float32Array.from(session.slab), intraOpThreads: 1 });
    expect((await fresh.run(feeds)).loss).toBe(inPlace);
    await fresh.release();
    await session.release();
  });

  it('a direct write into one weight changes the output (and a non-trainable copy would not)', async () => {
    const zoo = buildMlp({ sizes: [4, 2], seed: 23 });
    const prepared = prepareModel(zoo.bytes, { loss: 'none' });
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    const { data } = zooBatch(zoo, 1);
    const before = Array.from((await session.runOutputs({ input: data })).logits!.data as Float32Array);
    const bias = prepared.manifest.tensors.find((t) => t.name === 'fc0.bias')!;
    session.slab[bias.offset] = session.slab[bias.offset]! + 1;
    const after = Array.from((await session.runOutputs({ input: data })).logits!.data as Float32Array);
    expect(after[0]).toBeCloseTo(before[0]! + 1, 5);
    expect(after[1]).toBe(before[1]);
    await session.release();
  });
});
