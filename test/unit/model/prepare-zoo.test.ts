import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { createTrainableSession, decodeModel, prepareModel } from '../../../shared/model/index.js';
import { buildCnn, buildMlp, buildTransformer, type ZooModel } from '../../../shared/model/zoo/index.js';
import { originalLogits, referenceCrossEntropy, referenceMse, zooBatch, lcg } from './model-helpers.js';

const BATCH = 8;

/** Prepares a zoo model with a cross-entropy head and checks loss and correct against a JS reference. */
async function checkCrossEntropy(zoo: ZooModel, batch = BATCH): Promise<void> {
  const prepared = prepareModel(zoo.bytes);
  expect(prepared.warnings).toEqual([]);
  expect(prepared.manifest.parameterCount).toBe(zoo.parameterCount);
  expect(prepared.manifest.outputs).toEqual(['loss', 'correct']);
  expect(prepared.manifest.classes).toBe(zoo.classes);
  // Every initializer of a zoo model is float32, so by default all become inputs and none remain.
  expect(decodeModel(prepared.model).graph!.initializer ?? []).toHaveLength(0);

  const { data, labels } = zooBatch(zoo, batch);
  const logits = await originalLogits(zoo.bytes, { [zoo.input.name]: data });
  const expected = referenceCrossEntropy(logits, labels);
  const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
  try {
    const result = await session.run({ [zoo.input.name]: data, labels });
    expect(result.loss).toBeCloseTo(expected.loss, 5);
    expect(result.correct).toBe(expected.correct);
  } finally {
    await session.release();
  }
}

describe('prepareModel on zoo models', () => {
  it('MLP (Gemm, opset 13): cross-entropy and correct match a JS reference', async () => {
    await checkCrossEntropy(buildMlp({ sizes: [784, 64, 32, 10], seed: 3 }));
  });

  it('MLP (MatMul+Add, opset 18): Reduce* axes as inputs', async () => {
    await checkCrossEntropy(buildMlp({ sizes: [20, 16, 5], layer: 'matmul', opset: 18, seed: 4 }));
  });

  it('CNN (opset 18)', async () => {
    await checkCrossEntropy(buildCnn({ channels: [4, 8], hidden: 32, seed: 5 }));
  });

  it('transformer with LayerNormalization (opset 17) and erf-form Gelu', async () => {
    await checkCrossEntropy(buildTransformer({ vocab: 50, dim: 16, heads: 2, layers: 2, seq: 6, classes: 3, seed: 6 }));
  });

  it('transformer with decomposed LayerNorm and Relu (opset 13, Reduce axes as attribute)', async () => {
    await checkCrossEntropy(buildTransformer({ vocab: 50, dim: 16, heads: 4, layers: 1, seq: 5, classes: 4, activation: 'relu', opset: 13 }));
  });

  it('transformer with the Gelu operator and decomposed LayerNorm (opset 20)', async () => {
    await checkCrossEntropy(buildTransformer({ vocab: 50, dim: 8, heads: 2, layers: 1, seq: 4, classes: 2, opset: 20, layerNorm: 'decomposed' }));
  });

  it('default MLP 784-1024-1024-10 at batch 64 (the benchmark configuration)', async () => {
    await checkCrossEntropy(buildMlp(), 64);
  });

  it('is deterministic: the same seed gives the same bytes, another seed other weights', () => {
    const a = buildMlp({ sizes: [8, 4, 2], seed: 9 }).bytes;
    expect(buildMlp({ sizes: [8, 4, 2], seed: 9 }).bytes).toEqual(a);
    expect(buildMlp({ sizes: [8, 4, 2], seed: 10 }).bytes).not.toEqual(a);
  });

  it('mse head: loss equals the JS mean squared error against targets', async () => {
    const zoo = buildMlp({ sizes: [12, 8, 3], seed: 11 });
    const prepared = prepareModel(zoo.bytes, { loss: 'mse' });
    expect(prepared.manifest.labelInput).toEqual({ name: 'targets', elemType: 'float32', shape: ['batch', 3] });
    expect(prepared.manifest.outputs).toEqual(['loss']);
    const { data } = zooBatch(zoo, BATCH);
    const rand = lcg(99);
    const targets = new ort.Tensor('float32', Float32Array.from({ length: BATCH * 3 }, () => rand()), [BATCH, 3]);
    const expected = referenceMse(await originalLogits(zoo.bytes, { input: data }), targets);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    const result = await session.run({ input: data, targets });
    expect(result.loss).toBeCloseTo(expected, 6);
    expect(result.correct).toBeUndefined();
    await session.release();
  });

  it("loss 'none' keeps the original outputs and runOutputs returns the logits", async () => {
    const zoo = buildMlp({ sizes: [12, 8, 3], seed: 12 });
    const prepared = prepareModel(zoo.bytes, { loss: 'none' });
    expect(prepared.manifest.outputs).toEqual(['logits']);
    expect(prepared.manifest.labelInput).toBeNull();
    const { data } = zooBatch(zoo, 4);
    const session = await createTrainableSession(prepared);
    const out = await session.runOutputs({ input: data });
    expect(Array.from(out.logits!.data as Float32Array)).toEqual(Array.from((await originalLogits(zoo.bytes, { input: data })).data as Float32Array));
    await expect(session.run({ input: data })).rejects.toThrow(/prepared with loss 'none'/);
    await session.release();
  });

  it('lays tensors out at 16-element aligned offsets, in graph order, with the values of the initializers', () => {
    const zoo = buildMlp({ sizes: [5, 3, 2], seed: 13 });
    const { manifest, slab } = prepareModel(zoo.bytes);
    expect(manifest.tensors.map((t) => [t.name, t.offset, t.length])).toEqual([
      ['fc0.bias', 0, 3],
      ['fc0.weight', 16, 15],
      ['fc1.bias', 32, 2],
      ['fc1.weight', 48, 6],
    ]);
    expect(manifest.slabLength).toBe(64);
    const original = decodeModel(zoo.bytes).graph!.initializer!;
    for (const t of manifest.tensors) {
      const raw = original.find((i) => i.name === t.name)!.raw_data!;
      const values = new Float32Array(Uint8Array.from(raw).buffer);
      expect(Array.from(slab.subarray(t.offset, t.offset + t.length))).toEqual(Array.from(values));
    }
    // Padding stays zero.
    expect(Array.from(slab.subarray(3, 16))).toEqual(new Array(13).fill(0));
  });
});
