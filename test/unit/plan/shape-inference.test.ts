import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, prepareModel } from '../../../shared/model/index.js';
import { tensorValueInfo } from '../../../shared/model/onnx-builders.js';
import { buildCnn, buildMlp, buildTransformer, type ZooModel } from '../../../shared/model/zoo/index.js';
import { CNN_FAMILY, inferShapes, planGraphFromPrepared, PlanError, planGraphFromModel } from '../../../shared/plan/index.js';
import { node } from '../../../shared/model/onnx-builders.js';
import { DataType } from '../../../shared/model/onnx-types.js';

const BATCH = 3;

const zoo: Array<[string, () => ZooModel]> = [
  ['mlp gemm', () => buildMlp({ sizes: [12, 16, 8, 5] })],
  ['mlp matmul', () => buildMlp({ sizes: [12, 16, 5], layer: 'matmul' })],
  ['cnn', () => buildCnn({ channels: [2, 3], hidden: 8, classes: 4 })],
  // What `mezo plan zoo:cnn` sizes: family members, built with weights so onnxruntime can run them.
  ['cnn family member (channels 3)', () => CNN_FAMILY.build('channels', 3)],
  ['cnn family member (hidden 5)', () => CNN_FAMILY.build('hidden', 5)],
  ['transformer (LayerNormalization op, opset 17)', () => buildTransformer({ vocab: 20, dim: 16, heads: 2, layers: 2, seq: 6, classes: 3 })],
  ['transformer (decomposed LN, erf gelu, opset 13)', () => buildTransformer({ vocab: 20, dim: 16, heads: 4, layers: 1, seq: 5, classes: 3, opset: 13 })],
  ['transformer (Gelu op, opset 20, ReduceMean axes input)', () => buildTransformer({ vocab: 20, dim: 8, heads: 2, layers: 1, seq: 4, classes: 2, opset: 20 })],
  ['transformer (relu)', () => buildTransformer({ vocab: 20, dim: 8, heads: 2, layers: 1, seq: 4, classes: 2, activation: 'relu' })],
];

describe('inferShapes matches onnxruntime on every zoo model (loss head included)', () => {
  for (const [name, build] of zoo) {
    it(name, async () => {
      const model = build();
      const prepared = prepareModel(model.bytes, { loss: 'cross-entropy' });
      const inferred = inferShapes(planGraphFromPrepared(prepared), { batch: BATCH });
      // Expose every intermediate as a graph output, run, and compare each shape onnxruntime reports.
      const decoded = decodeModel(prepared.model);
      const graph = decoded.graph!;
      const names = graph.node!.filter((n) => n.op_type !== 'Constant').flatMap((n) => n.output ?? []);
      const existing = new Set((graph.output ?? []).map((o) => o.name));
      graph.output = [...graph.output!, ...names.filter((n) => !existing.has(n)).map((n) => tensorValueInfo(n, inferred.tensors.get(n)!.elemType, undefined))];
      const session = await ort.InferenceSession.create(encodeModel(decoded));
      const perExample = model.input.shape.slice(1).reduce<number>((a, b) => a * Number(b), 1);
      const feeds: Record<string, ort.Tensor> = {
        [model.input.name]:
          model.input.elemType === 'float32'
            ? new ort.Tensor('float32', Float32Array.from({ length: BATCH * perExample }, (_, i) => (i % 7) / 7), [BATCH, ...model.input.shape.slice(1).map(Number)])
            : new ort.Tensor('int64', BigInt64Array.from({ length: BATCH * perExample }, (_, i) => BigInt(i % 20)), [BATCH, ...model.input.shape.slice(1).map(Number)]),
        labels: new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(i % 2)), [BATCH]),
      };
      for (const t of prepared.manifest.tensors) feeds[t.name] = new ort.Tensor('float32', prepared.slab.subarray(t.offset, t.offset + t.length), t.shape);
      const outputs = await session.run(feeds);
      await session.release();
      expect(Object.keys(outputs).length).toBeGreaterThan(5);
      for (const [out, tensor] of Object.entries(outputs)) {
        expect({ out, shape: inferred.tensors.get(out)?.shape }).toEqual({ out, shape: [...tensor.dims] });
      }
    });
  }
});

describe('inferShapes on hand-built graphs', () => {
  const graphOf = (nodes: ReturnType<typeof node>[], inputShape: Array<number | string>, opset = 17) =>
    planGraphFromModel(
      encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: opset }],
        graph: { name: 'g', node: nodes, input: [tensorValueInfo('x', DataType.FLOAT, inputShape)], output: [tensorValueInfo(nodes.at(-1)!.output![0]!, DataType.FLOAT, undefined)] },
      }),
      { loss: 'none' },
    );

  it('binds the batch, pools, flattens and concatenates', () => {
    const g = graphOf(
      [
        node('AveragePool', ['x'], ['p'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
        node('GlobalAveragePool', ['p'], ['gp']),
        node('Concat', ['p', 'p'], ['cat'], { axis: 1 }),
        node('Flatten', ['cat'], ['flat'], { axis: 2 }),
        node('Transpose', ['flat'], ['t']),
        node('Softmax', ['t'], ['out'], { axis: -1 }),
      ],
      ['n', 3, 9, 9],
    );
    const t = inferShapes(g, { batch: 5 }).tensors;
    expect(t.get('p')!.shape).toEqual([5, 3, 5, 5]);
    expect(t.get('gp')!.shape).toEqual([5, 3, 1, 1]);
    expect(t.get('cat')!.shape).toEqual([5, 6, 5, 5]);
    expect(t.get('flat')!.shape).toEqual([30, 25]);
    expect(t.get('out')!.shape).toEqual([25, 30]);
  });

  it('folds Shape → Gather → Concat into a Reshape target', () => {
    const g = graphOf(
      [
        node('Shape', ['x'], ['s']),
        node('Constant', [], ['i0'], { value: { name: 'i0', dims: [1], data_type: DataType.INT64, int64_data: [0] } }),
        node('Gather', ['s', 'i0'], ['b'], { axis: 0 }),
        node('Constant', [], ['rest'], { value: { name: 'rest', dims: [1], data_type: DataType.INT64, int64_data: [-1] } }),
        node('Concat', ['b', 'rest'], ['target'], { axis: 0 }),
        node('Reshape', ['x', 'target'], ['out']),
      ],
      ['batch', 4, 6],
    );
    expect(inferShapes(g, { batch: 7 }).tensors.get('out')!.shape).toEqual([7, 24]);
  });

  it('names the node of an unsupported operator', () => {
    const g = graphOf([node('Relu', ['x'], ['r']), node('NonMaxSuppression', ['r'], ['out'], {}, 'nms_1')], ['batch', 4]);
    expect(() => inferShapes(g, { batch: 2 })).toThrow(PlanError);
    expect(() => inferShapes(g, { batch: 2 })).toThrow(/node "nms_1" \(NonMaxSuppression\): operator NonMaxSuppression is not supported/);
  });

  it('rejects a Reshape whose target shape is computed at run time, and an unbound symbolic dimension', () => {
    const g = graphOf([node('Relu', ['x'], ['r']), node('Reshape', ['x', 'r'], ['out'], {}, 'reshape_dyn')], ['batch', 2]);
    expect(() => inferShapes(g, { batch: 2 })).toThrow(/node "reshape_dyn" \(Reshape\): the target shape \(input 1\) must be a constant/);
    const h = graphOf([node('Relu', ['x'], ['out'])], ['batch', 'seq']);
    expect(() => inferShapes(h, { batch: 2 })).toThrow(/dimension 1 \(seq\) is not fixed/);
    expect(inferShapes(h, { batch: 2, dims: { seq: 9 } }).tensors.get('out')!.shape).toEqual([2, 9]);
  });
});
