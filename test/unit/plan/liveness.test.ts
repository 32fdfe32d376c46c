import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../../shared/model/index.js';
import { node, tensorValueInfo } from '../../../shared/model/onnx-builders.js';
import { DataType } from '../../../shared/model/onnx-types.js';
import { activationPeak, inferShapes, planGraphFromModel, topologicalOrder } from '../../../shared/plan/index.js';

/** x [1, 100] float (400 B each tensor): a = relu x; b = relu a; c = a + b; v = reshape c; out = relu v. */
function diamond(listed = [0, 1, 2, 3, 4]) {
  const nodes = [
    node('Relu', ['x'], ['a'], {}, 'n1'),
    node('Relu', ['a'], ['b'], {}, 'n2'),
    node('Add', ['a', 'b'], ['c'], {}, 'n3'),
    node('Reshape', ['c', 'shape'], ['v'], {}, 'n4'),
    node('Relu', ['v'], ['out'], {}, 'n5'),
  ];
  const model = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'diamond',
      node: listed.map((i) => nodes[i]!),
      initializer: [{ name: 'shape', dims: [2], data_type: DataType.INT64, int64_data: [10, 10] }],
      input: [tensorValueInfo('x', DataType.FLOAT, [1, 100])],
      output: [tensorValueInfo('out', DataType.FLOAT, [10, 10])],
    },
  });
  return planGraphFromModel(model, { loss: 'none' });
}

describe('activationPeak', () => {
  it('finds the known peak of a hand-built graph', () => {
    const graph = diamond();
    const inferred = inferShapes(graph, { batch: 1 });
    const result = activationPeak(inferred, { isStatic: (n) => graph.frozen.has(n), held: ['x'], outputs: ['out'] });
    // n1: x a = 800; n2: x a b = 1200; n3: x a b c = 1600 (a, b read for the last time); n4: view of c, still
    // 800; n5: x c out = 1200.
    expect(result.peakBytes).toBe(1600);
    expect(result.peakNode).toBe('n3');
    expect(result.liveAtPeak.map((t) => t.name).sort()).toEqual(['a', 'b', 'c', 'x']);
  });

  it('counts a view as its own buffer only when aliasing is off', () => {
    const graph = diamond();
    const inferred = inferShapes(graph, { batch: 1 });
    const aliased = activationPeak(inferred, { isStatic: (n) => graph.frozen.has(n), held: ['x'], outputs: ['out'] });
    const copied = activationPeak(inferred, { isStatic: (n) => graph.frozen.has(n), held: ['x'], outputs: ['out'], aliasViews: false });
    expect(aliased.peakBytes).toBe(1600);
    // Without aliasing n4 holds x, c and v (1200) and n5 x, v, out (1200): the peak stays at n3.
    expect(copied.peakBytes).toBe(1600);
    expect(copied.liveAtPeak.length).toBe(4);
  });

  it('sorts nodes listed out of order', () => {
    const graph = diamond([2, 0, 4, 1, 3]);
    expect(topologicalOrder(graph.nodes).map((n) => n.name)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    const result = activationPeak(inferShapes(graph, { batch: 1 }), { isStatic: (n) => graph.frozen.has(n), held: ['x'], outputs: ['out'] });
    expect(result.peakBytes).toBe(1600);
  });

  it('reports a cycle naming a node', () => {
    const graph = diamond();
    graph.nodes[0]!.input = ['out'];
    expect(() => topologicalOrder(graph.nodes)).toThrow(/cycle through node "n1" \(Relu\)/);
  });
});
