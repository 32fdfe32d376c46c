import { describe, expect, it } from 'vitest';
import { compilePattern, createTrainableSession, decodeModel, encodeModel, ModelPreparationError, prepareModel } from '../../../shared/model/index.js';
import { DataType } from '../../../shared/model/onnx-types.js';
import { int64Tensor, tensorValueInfo } from '../../../shared/model/onnx-builders.js';
import { buildMlp, buildTransformer, GraphBuilder } from '../../../shared/model/zoo/index.js';
import { originalLogits, referenceCrossEntropy, zooBatch } from './model-helpers.js';

const mlp = buildMlp({ sizes: [6, 5, 4, 3], seed: 31 });

function namesOf(bytes: Uint8Array): { initializers: string[]; inputs: string[] } {
  const graph = decodeModel(bytes).graph!;
  return { initializers: (graph.initializer ?? []).map((t) => t.name!), inputs: (graph.input ?? []).map((v) => v.name!) };
}

describe('trainable selection', () => {
  it('a glob selects matching initializers; the others stay frozen initializers', async () => {
    const prepared = prepareModel(mlp.bytes, { trainable: 'fc2.*' });
    expect(prepared.manifest.tensors.map((t) => t.name)).toEqual(['fc2.bias', 'fc2.weight']);
    const { initializers, inputs } = namesOf(prepared.model);
    expect(initializers).toEqual(['fc0.bias', 'fc0.weight', 'fc1.bias', 'fc1.weight']);
    expect(inputs).toEqual(['input', 'labels', 'fc2.bias', 'fc2.weight']);

    // Frozen weights still take part: the loss matches the full original model.
    const { data, labels } = zooBatch(mlp, 5);
    const expected = referenceCrossEntropy(await originalLogits(mlp.bytes, { input: data }), labels);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    expect((await session.run({ input: data, labels })).loss).toBeCloseTo(expected.loss, 5);
    await session.release();
  });

  it('a "/regex/" string, a RegExp and a list of patterns select as expected', () => {
    expect(prepareModel(mlp.bytes, { trainable: '/fc[01]\\.weight/' }).manifest.tensors.map((t) => t.name)).toEqual(['fc0.weight', 'fc1.weight']);
    expect(prepareModel(mlp.bytes, { trainable: /bias$/ }).manifest.tensors.map((t) => t.name)).toEqual(['fc0.bias', 'fc1.bias', 'fc2.bias']);
    expect(prepareModel(mlp.bytes, { trainable: ['fc0.bias', /^fc2\.w/] }).manifest.tensors.map((t) => t.name)).toEqual(['fc0.bias', 'fc2.weight']);
    expect(prepareModel(mlp.bytes, { trainable: 'fc{0,2}.weight' }).manifest.tensors.map((t) => t.name)).toEqual(['fc0.weight', 'fc2.weight']);
  });

  it('glob semantics: * spans separators, ? is one character, the whole name must match', () => {
    expect(compilePattern('blocks.*.attn.*').test('blocks.0.attn.q.weight')).toBe(true);
    expect(compilePattern('*attn*').test('/encoder/attn/q')).toBe(true);
    expect(compilePattern('fc?.bias').test('fc1.bias')).toBe(true);
    expect(compilePattern('fc?.bias').test('fc10.bias')).toBe(false);
    expect(compilePattern('fc1').test('fc1.bias')).toBe(false);
    expect(compilePattern('a.b').test('aXb')).toBe(false);
    expect(() => compilePattern('fc{0,1')).toThrow(/unclosed/);
    expect(() => compilePattern('/(unclosed/')).toThrow(/not a valid regular expression/);
  });

  it('transformer: attention-only selection keeps embeddings and feed-forward frozen', () => {
    const zoo = buildTransformer({ vocab: 40, dim: 8, heads: 2, layers: 2, seq: 4, classes: 2, seed: 32 });
    const prepared = prepareModel(zoo.bytes, { trainable: 'blocks.*.attn.*' });
    expect(prepared.manifest.tensors).toHaveLength(2 * 4 * 2);
    expect(prepared.manifest.tensors.every((t) => /^blocks\.\d\.attn\./.test(t.name))).toBe(true);
    expect(namesOf(prepared.model).initializers).toContain('embed.tokens');
  });

  it('rejects a pattern that selects nothing, naming it and listing some initializers', () => {
    expect(() => prepareModel(mlp.bytes, { trainable: 'encoder.*' })).toThrow(ModelPreparationError);
    expect(() => prepareModel(mlp.bytes, { trainable: 'encoder.*' })).toThrow(/pattern "encoder\.\*" selects no initializer \(the model has 6, e\.g\. "fc0\.bias"/);
  });

  it('rejects a selection that includes non-float32 initializers, naming them', () => {
    const g = new GraphBuilder({ opset: 13, seed: 1 });
    const x = g.input('x', DataType.FLOAT, ['batch', 2, 3]);
    const shape = g.tensor(int64Tensor('reshape.shape', [2], [0, 6]));
    const flat = g.op('Reshape', [x, shape], 'flat');
    g.op('Gemm', [flat, g.weight('fc.weight', [2, 6], { std: 0.1 }), g.weight('fc.bias', [2], { constant: 0 })], 'logits', { transB: 1 });
    g.output('logits', DataType.FLOAT, ['batch', 2]);
    const bytes = g.build('reshape', 'int64 initializer');
    expect(() => prepareModel(bytes, { trainable: '*' })).toThrow(/selects 1 non-float32 initializer\(s\): reshape\.shape \(int64\)/);
    // The default selects float32 only, and the int64 shape stays an initializer.
    const prepared = prepareModel(bytes);
    expect(prepared.manifest.tensors.map((t) => t.name)).toEqual(['fc.weight', 'fc.bias']);
    expect(namesOf(prepared.model).initializers).toEqual(['reshape.shape']);
  });

  it('handles initializers an old exporter also declared as graph inputs', async () => {
    const model = decodeModel(mlp.bytes);
    const graph = model.graph!;
    // IR < 4 style: every initializer is also listed as an input (with its type and shape).
    for (const t of graph.initializer!) graph.input!.push(tensorValueInfo(t.name!, DataType.FLOAT, t.dims!.map(Number)));
    const bytes = encodeModel(model);
    const prepared = prepareModel(bytes, { trainable: 'fc0.*' });
    const { inputs, initializers } = namesOf(prepared.model);
    expect(inputs.filter((n) => n === 'fc0.weight')).toHaveLength(1);
    expect(inputs.slice(0, 1)).toEqual(['input']);
    expect(initializers).toEqual(['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
    expect(prepared.manifest.dataInputs.map((i) => i.name)).toEqual(['input']);
    const { data, labels } = zooBatch(mlp, 3);
    const expected = referenceCrossEntropy(await originalLogits(mlp.bytes, { input: data }), labels);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    expect((await session.run({ input: data, labels })).loss).toBeCloseTo(expected.loss, 5);
    await session.release();
  });
});
