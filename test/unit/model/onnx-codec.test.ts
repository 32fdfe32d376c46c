import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, prepareModel } from '../../../shared/model/index.js';
import { floatTensor, node, tensorValueInfo } from '../../../shared/model/onnx-builders.js';
import { DataType } from '../../../shared/model/onnx-types.js';
import { buildMlp, buildTransformer } from '../../../shared/model/zoo/index.js';

describe('ONNX schema subset', () => {
  it('re-encodes decoded models byte for byte', () => {
    for (const bytes of [buildMlp({ sizes: [5, 4, 2] }).bytes, buildTransformer({ vocab: 20, dim: 8, heads: 2, layers: 1, seq: 3 }).bytes]) {
      expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('carries metadata, doc strings, functions, training info, sparse initializers and subgraphs through prepareModel', () => {
    const model = decodeModel(buildMlp({ sizes: [4, 3], seed: 71 }).bytes);
    const functionBytes = Uint8Array.of(0x0a, 0x03, 0x66, 0x6f, 0x6f); // an opaque FunctionProto: name = "foo"
    const trainingBytes = Uint8Array.of(0x0a, 0x00);
    model.metadata_props = [{ key: 'author', value: 'test' }];
    model.doc_string = 'model doc';
    model.functions = [functionBytes];
    model.training_info = [trainingBytes];
    const graph = model.graph!;
    graph.doc_string = 'graph doc';
    graph.metadata_props = [{ key: 'stage', value: 'graph' }];
    graph.sparse_initializer = [
      { values: { name: 'sparse', dims: [1], data_type: DataType.FLOAT, float_data: [1] }, indices: { dims: [1], data_type: DataType.INT64, int64_data: [0] }, dims: [4] },
    ];
    graph.node![0]!.doc_string = 'first node';
    graph.node![0]!.metadata_props = [{ key: 'k', value: 'v' }];
    // An If node whose branches are subgraphs (never executed here; it only has to survive the round trip).
    const branch = { name: 'branch', node: [node('Identity', ['fc0.bias'], ['branch_out'])], output: [tensorValueInfo('branch_out', DataType.FLOAT, [3])] };
    graph.node!.push({ ...node('If', ['cond'], ['if_out']), attribute: [{ name: 'then_branch', type: 5, g: branch }, { name: 'else_branch', type: 5, g: branch }] });
    graph.initializer!.push({ name: 'cond', dims: [], data_type: DataType.BOOL, int32_data: [1] });
    graph.initializer!.push(floatTensor('unused', [2], Float32Array.of(1, 2)));

    const prepared = prepareModel(encodeModel(model), { trainable: 'fc*' });
    expect(prepared.warnings).toEqual([]);
    const out = decodeModel(prepared.model);
    expect(out.metadata_props).toEqual([{ key: 'author', value: 'test' }]);
    expect(out.doc_string).toBe('model doc');
    expect(Array.from(out.functions![0]!)).toEqual(Array.from(functionBytes));
    expect(Array.from(out.training_info![0]!)).toEqual(Array.from(trainingBytes));
    expect(out.graph!.doc_string).toBe('graph doc');
    expect(out.graph!.metadata_props).toEqual([{ key: 'stage', value: 'graph' }]);
    expect(out.graph!.sparse_initializer![0]!.values!.name).toBe('sparse');
    expect(out.graph!.node![0]!.doc_string).toBe('first node');
    const ifNode = out.graph!.node!.find((n) => n.op_type === 'If')!;
    expect(ifNode.attribute![0]!.g!.node![0]!.input).toEqual(['fc0.bias']);
    expect(out.graph!.initializer!.map((t) => t.name)).toEqual(['cond', 'unused']);
  });

  it('warns when the model holds fields the schema does not declare (they are dropped)', () => {
    const bytes = buildMlp({ sizes: [4, 2] }).bytes;
    // Field 99, varint 1: a field from some future ONNX version.
    const withUnknown = Uint8Array.from([...bytes, 0x98, 0x06, 0x01]);
    const prepared = prepareModel(withUnknown);
    expect(prepared.warnings).toHaveLength(1);
    expect(prepared.warnings[0]).toMatch(/changed its size by -3 bytes: it may use ONNX fields this schema does not declare/);
  });

  it('reads float_data as well as raw_data', () => {
    const model = decodeModel(buildMlp({ sizes: [3, 2], seed: 72 }).bytes);
    const weight = model.graph!.initializer!.find((t) => t.name === 'fc0.weight')!;
    const values = Array.from(new Float32Array(Uint8Array.from(weight.raw_data!).buffer));
    delete weight.raw_data;
    weight.float_data = values;
    const { manifest, slab } = prepareModel(encodeModel(model));
    const t = manifest.tensors.find((x) => x.name === 'fc0.weight')!;
    expect(Array.from(slab.subarray(t.offset, t.offset + t.length))).toEqual(values);
  });
});
