/**
 * Shape inference with every dimension bound: the batch dimension of the data inputs is set to a given size, and
 * every node's outputs get concrete shapes and element types. Covers the operators of the zoo, the loss head
 * and the common exporters' vocabulary; small integer tensors (shapes, axes) are folded so that Reshape,
 * Unsqueeze, Reduce* and friends can read their constant inputs. Anything else fails naming the node.
 */
import { DataType, int64ToNumber, type AttributeProto, type NodeProto } from '../model/onnx-types.js';
import type { PlanGraph, StaticTensor } from './plan-graph.js';
import { staticTensor } from './plan-graph.js';
import { PlanError } from './plan-error.js';
import { nodeLabel, topologicalOrder } from './topological-order.js';

export interface InferredTensor {
  shape: number[];
  elemType: number;
  /** Folded values of a small integer tensor. */
  values?: number[];
}

export interface ShapeOptions {
  /** The size bound to the batch dimension (the first dimension of a data input when it is symbolic). */
  batch: number;
  /** Sizes for other symbolic dimensions, by name. */
  dims?: Record<string, number>;
}

export interface InferredGraph {
  /** Nodes in execution (topological) order. */
  order: NodeProto[];
  /** Every tensor's shape: data inputs, weights, constants and node outputs. */
  tensors: Map<string, InferredTensor>;
}

const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

export function elementBytes(elemType: number): number {
  const bytes = ELEMENT_BYTES[elemType];
  if (bytes === undefined) throw new PlanError(`element type ${elemType} has no fixed size`);
  return bytes;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensorBytes(t: Pick<InferredTensor, 'shape' | 'elemType'>): number {
  return elementCount(t.shape) * elementBytes(t.elemType);
}

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.i === undefined ? fallback : int64ToNumber(a.i, name);
}
function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a?.ints === undefined ? undefined : a.ints.map((v) => int64ToNumber(v, name));
}
function stringAttr(node: NodeProto, name: string, fallback: string): string {
  const a = attr(node, name);
  return a?.s === undefined ? fallback : new TextDecoder().decode(a.s);
}

const UNARY = new Set([
  'Identity', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Gelu', 'Erf', 'Tanh', 'Sigmoid', 'HardSigmoid', 'Softplus', 'Exp', 'Log',
  'Sqrt', 'Neg', 'Abs', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Softmax', 'LogSoftmax', 'Clip', 'Not', 'Sin', 'Cos',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mod', 'PRelu']);
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp']);

/** Numpy-style (multidirectional) broadcasting of two or more shapes. */
export function broadcastShapes(shapes: readonly number[][], where: string): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let size = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (size !== 1 && size !== d) throw new PlanError(`${where}: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`);
      size = d;
    }
    out.push(size);
  }
  return out;
}

function normalizeAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new PlanError(`${where}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Output sizes of a convolution or pooling window along each spatial axis. */
function windowed(node: NodeProto, spatial: number[], kernel: number[], where: string, ceil = false): number[] {
  const n = spatial.length;
  const strides = intsAttr(node, 'strides') ?? new Array<number>(n).fill(1);
  const dilations = intsAttr(node, 'dilations') ?? new Array<number>(n).fill(1);
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET');
  const pads = intsAttr(node, 'pads') ?? new Array<number>(2 * n).fill(0);
  if (kernel.length !== n) throw new PlanError(`${where}: kernel has ${kernel.length} dims for ${n} spatial dims`);
  return spatial.map((size, i) => {
    const stride = strides[i] ?? 1;
    const extent = (kernel[i]! - 1) * (dilations[i] ?? 1) + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
    if (autoPad === 'VALID') return Math.floor((size - extent) / stride) + 1;
    if (autoPad !== 'NOTSET') throw new PlanError(`${where}: auto_pad ${JSON.stringify(autoPad)} is not supported`);
    const span = size + (pads[i] ?? 0) + (pads[i + n] ?? 0) - extent;
    const out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    if (out < 1) throw new PlanError(`${where}: the window is larger than the padded input (${size} along spatial axis ${i})`);
    return out;
  });
}

/** Infers every tensor's shape with the batch dimension bound to options.batch. */
export function inferShapes(graph: PlanGraph, options: ShapeOptions): InferredGraph {
  const { batch } = options;
  if (!Number.isInteger(batch) || batch < 1) throw new PlanError(`batch must be a positive integer, got ${String(batch)}`);
  const tensors = new Map<string, InferredTensor>();
  const put = (name: string, t: StaticTensor | InferredTensor): void => {
    tensors.set(name, t);
  };
  for (const [name, t] of graph.frozen) put(name, t);
  for (const [name, t] of graph.trainable) put(name, t);
  for (const input of graph.dataInputs) {
    const name = input.name ?? '';
    const type = input.type?.tensor_type;
    if (type?.shape === undefined) throw new PlanError(`input ${JSON.stringify(name)} declares no shape; the planner needs its rank`);
    const shape = (type.shape.dim ?? []).map((d, axis) => {
      if (d.dim_value !== undefined && d.dim_value !== null) return int64ToNumber(d.dim_value, `${name} dim ${axis}`);
      const bound = d.dim_param ? options.dims?.[d.dim_param] : undefined;
      if (bound !== undefined) return bound;
      if (axis === 0) return batch;
      throw new PlanError(`input ${JSON.stringify(name)} dimension ${axis} (${d.dim_param ?? 'unknown'}) is not fixed; give its size in options.dims`);
    });
    put(name, { shape, elemType: type.elem_type ?? DataType.FLOAT });
  }
  const order = topologicalOrder(graph.nodes);
  order.forEach((node, index) => {
    const where = nodeLabel(node, index);
    const inputs = (node.input ?? []).map((name) => {
      if (!name) return undefined;
      const t = tensors.get(name);
      if (t === undefined) throw new PlanError(`${where}: input ${JSON.stringify(name)} is not produced by any node, input or initializer`);
      return t;
    });
    const outs = inferNode(node, inputs, graph.opset, where);
    (node.output ?? []).forEach((name, i) => {
      if (!name) return;
      const t = outs[i];
      if (t === undefined) throw new PlanError(`${where}: output ${i} (${JSON.stringify(name)}) is not supported`);
      put(name, t);
    });
  });
  return { order, tensors };
}

function need(inputs: Array<InferredTensor | undefined>, i: number, where: string): InferredTensor {
  const t = inputs[i];
  if (t === undefined) throw new PlanError(`${where}: input ${i} is missing`);
  return t;
}

function constantInts(inputs: Array<InferredTensor | undefined>, i: number, what: string, where: string): number[] {
  const t = need(inputs, i, where);
  if (t.values === undefined) throw new PlanError(`${where}: ${what} (input ${i}) must be a constant the planner can read`);
  return t.values;
}

function optionalInts(inputs: Array<InferredTensor | undefined>, i: number, where: string): number[] | undefined {
  return inputs[i] === undefined ? undefined : constantInts(inputs, i, `input ${i}`, where);
}

function same(t: InferredTensor, elemType = t.elemType): InferredTensor {
  return { shape: [...t.shape], elemType };
}

function withValues(shape: number[], elemType: number, values: number[] | undefined): InferredTensor {
  return values === undefined ? { shape, elemType } : { shape, elemType, values };
}

function inferNode(node: NodeProto, inputs: Array<InferredTensor | undefined>, opset: number, where: string): InferredTensor[] {
  const op = node.op_type ?? '';
  if (node.domain && node.domain !== 'ai.onnx') throw new PlanError(`${where}: operators of domain ${JSON.stringify(node.domain)} are not supported`);
  const x = (): InferredTensor => need(inputs, 0, where);

  if (op === 'Constant') {
    const a = (node.attribute ?? [])[0];
    if (a?.t) return [staticTensor(a.t)];
    if (a?.name === 'value_float') return [{ shape: [], elemType: DataType.FLOAT }];
    if (a?.name === 'value_floats') return [{ shape: [a.floats?.length ?? 0], elemType: DataType.FLOAT }];
    if (a?.name === 'value_int') return [{ shape: [], elemType: DataType.INT64, values: [int64ToNumber(a.i, 'value_int')] }];
    if (a?.name === 'value_ints') {
      const values = (a.ints ?? []).map((v) => int64ToNumber(v, 'value_ints'));
      return [{ shape: [values.length], elemType: DataType.INT64, values }];
    }
    throw new PlanError(`${where}: Constant with attribute ${JSON.stringify(a?.name)} is not supported`);
  }
  if (UNARY.has(op)) {
    const t = x();
    const values = op === 'Identity' ? t.values : op === 'Neg' ? t.values?.map((v) => -v) : undefined;
    return [withValues([...t.shape], t.elemType, values)];
  }
  if (op === 'Cast') {
    const to = intAttr(node, 'to', DataType.FLOAT);
    const t = x();
    const integral = to === DataType.INT64 || to === DataType.INT32;
    return [withValues([...t.shape], to, integral ? t.values?.map(Math.trunc) : undefined)];
  }
  if (op === 'Dropout') return [same(x()), same(x(), DataType.BOOL)];
  if (BROADCAST.has(op) || COMPARE.has(op)) {
    const a = need(inputs, 0, where);
    const b = need(inputs, 1, where);
    const shape = broadcastShapes([a.shape, b.shape], where);
    let values: number[] | undefined;
    if (a.values && b.values && (a.values.length === b.values.length || a.values.length === 1 || b.values.length === 1)) {
      const n = Math.max(a.values.length, b.values.length);
      const f = { Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Mul: (p: number, q: number) => p * q, Div: (p: number, q: number) => Math.trunc(p / q) }[op as 'Add'];
      if (f) values = Array.from({ length: n }, (_, i) => f(a.values![a.values!.length === 1 ? 0 : i]!, b.values![b.values!.length === 1 ? 0 : i]!));
    }
    return [withValues(shape, COMPARE.has(op) ? DataType.BOOL : a.elemType, values)];
  }
  if (op === 'Where') {
    const shapes = [0, 1, 2].map((i) => need(inputs, i, where).shape);
    return [{ shape: broadcastShapes(shapes, where), elemType: need(inputs, 1, where).elemType }];
  }
  if (op === 'Gemm') {
    const a = x().shape;
    const b = need(inputs, 1, where).shape;
    if (a.length !== 2 || b.length !== 2) throw new PlanError(`${where}: Gemm needs 2-D A and B, got [${a.join(', ')}] and [${b.join(', ')}]`);
    const [m, k] = intAttr(node, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
    const [kb, n] = intAttr(node, 'transB', 0) ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
    if (k !== kb) throw new PlanError(`${where}: inner dimensions ${k} and ${kb} differ`);
    return [{ shape: [m, n], elemType: x().elemType }];
  }
  if (op === 'MatMul') {
    const a = x().shape;
    const b = need(inputs, 1, where).shape;
    if (a.length === 0 || b.length === 0) throw new PlanError(`${where}: MatMul of a scalar`);
    const a2 = a.length === 1 ? [1, a[0]!] : a;
    const b2 = b.length === 1 ? [b[0]!, 1] : b;
    if (a2.at(-1) !== b2.at(-2)) throw new PlanError(`${where}: inner dimensions of [${a.join(', ')}] and [${b.join(', ')}] differ`);
    const lead = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], where);
    const shape = [...lead, ...(a.length === 1 ? [] : [a2.at(-2)!]), ...(b.length === 1 ? [] : [b2.at(-1)!])];
    return [{ shape, elemType: x().elemType }];
  }
  if (op === 'Conv') {
    const [n, c, ...spatial] = x().shape;
    const w = need(inputs, 1, where).shape;
    const group = intAttr(node, 'group', 1);
    if (w[1]! * group !== c) throw new PlanError(`${where}: weight expects ${w[1]! * group} input channels, input has ${c}`);
    const kernel = intsAttr(node, 'kernel_shape') ?? w.slice(2);
    return [{ shape: [n!, w[0]!, ...windowed(node, spatial, kernel, where)], elemType: x().elemType }];
  }
  if (op === 'MaxPool' || op === 'AveragePool') {
    const [n, c, ...spatial] = x().shape;
    const kernel = intsAttr(node, 'kernel_shape');
    if (kernel === undefined) throw new PlanError(`${where}: kernel_shape is required`);
    const shape = [n!, c!, ...windowed(node, spatial, kernel, where, intAttr(node, 'ceil_mode', 0) === 1)];
    return [{ shape, elemType: x().elemType }, { shape, elemType: DataType.INT64 }];
  }
  if (op === 'GlobalAveragePool' || op === 'GlobalMaxPool') {
    const [n, c, ...spatial] = x().shape;
    return [{ shape: [n!, c!, ...spatial.map(() => 1)], elemType: x().elemType }];
  }
  if (op === 'BatchNormalization' || op === 'InstanceNormalization') return [same(x())];
  if (op === 'LayerNormalization') {
    const t = x();
    const axis = normalizeAxis(intAttr(node, 'axis', -1), t.shape.length, where);
    const stats = t.shape.map((d, i) => (i < axis ? d : 1));
    return [same(t), { shape: stats, elemType: DataType.FLOAT }, { shape: [...stats], elemType: DataType.FLOAT }];
  }
  if (op === 'Flatten') {
    const s = x().shape;
    const axis = intAttr(node, 'axis', 1);
    const a = axis < 0 ? axis + s.length : axis;
    if (a < 0 || a > s.length) throw new PlanError(`${where}: axis ${axis} is out of range for rank ${s.length}`);
    return [{ shape: [elementCount(s.slice(0, a)), elementCount(s.slice(a))], elemType: x().elemType }];
  }
  if (op === 'Reshape') {
    const t = x();
    const target = constantInts(inputs, 1, 'the target shape', where);
    const allowZero = intAttr(node, 'allowzero', 0) === 1;
    const shape = target.map((d, i) => (d === 0 && !allowZero ? t.shape[i]! : d));
    const unknown = shape.indexOf(-1);
    if (unknown >= 0) {
      const known = elementCount(shape.filter((d, i) => i !== unknown));
      shape[unknown] = known === 0 ? 0 : elementCount(t.shape) / known;
    }
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || elementCount(shape) !== elementCount(t.shape)) {
      throw new PlanError(`${where}: cannot reshape [${t.shape.join(', ')}] to [${target.join(', ')}]`);
    }
    return [withValues(shape, t.elemType, t.values)];
  }
  if (op === 'Transpose') {
    const s = x().shape;
    const perm = intsAttr(node, 'perm') ?? s.map((_, i) => s.length - 1 - i);
    if (perm.length !== s.length) throw new PlanError(`${where}: perm has ${perm.length} entries for rank ${s.length}`);
    return [{ shape: perm.map((p) => s[p]!), elemType: x().elemType }];
  }
  if (op === 'Gather') {
    const data = x();
    const indices = need(inputs, 1, where);
    const axis = normalizeAxis(intAttr(node, 'axis', 0), data.shape.length, where);
    const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    let values: number[] | undefined;
    if (data.values && indices.values && data.shape.length === 1) {
      values = indices.values.map((i) => data.values![i < 0 ? i + data.values!.length : i]!);
    }
    return [withValues(shape, data.elemType, values)];
  }
  if (op === 'GatherElements') return [{ shape: [...need(inputs, 1, where).shape], elemType: x().elemType }];
  if (REDUCE.has(op)) {
    const t = x();
    const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
    const axes = axesAsInput ? optionalInts(inputs, 1, where) : intsAttr(node, 'axes');
    const keep = intAttr(node, 'keepdims', 1) === 1;
    if ((axes === undefined || axes.length === 0) && intAttr(node, 'noop_with_empty_axes', 0) === 1) return [same(t)];
    const reduced = new Set((axes === undefined || axes.length === 0 ? t.shape.map((_, i) => i) : axes).map((a) => normalizeAxis(a, t.shape.length, where)));
    const shape = t.shape.flatMap((d, i) => (reduced.has(i) ? (keep ? [1] : []) : [d]));
    return [{ shape, elemType: t.elemType }];
  }
  if (op === 'ArgMax' || op === 'ArgMin') {
    const t = x();
    const axis = normalizeAxis(intAttr(node, 'axis', 0), t.shape.length, where);
    const keep = intAttr(node, 'keepdims', 1) === 1;
    return [{ shape: t.shape.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d])), elemType: DataType.INT64 }];
  }
  if (op === 'Concat') {
    const parts = inputs.filter((t): t is InferredTensor => t !== undefined);
    if (parts.length === 0) throw new PlanError(`${where}: Concat has no inputs`);
    const rank = parts[0]!.shape.length;
    const axis = normalizeAxis(intAttr(node, 'axis', 0), rank, where);
    const shape = [...parts[0]!.shape];
    shape[axis] = parts.reduce((a, t) => a + t.shape[axis]!, 0);
    const values = parts.every((t) => t.values !== undefined) && rank === 1 ? parts.flatMap((t) => t.values!) : undefined;
    return [withValues(shape, parts[0]!.elemType, values)];
  }
  if (op === 'Unsqueeze') {
    const t = x();
    const axes = opset >= 13 ? constantInts(inputs, 1, 'axes', where) : (intsAttr(node, 'axes') ?? []);
    const rank = t.shape.length + axes.length;
    const at = new Set(axes.map((a) => normalizeAxis(a, rank, where)));
    const shape: number[] = [];
    let next = 0;
    for (let i = 0; i < rank; i++) shape.push(at.has(i) ? 1 : t.shape[next++]!);
    return [withValues(shape, t.elemType, t.values)];
  }
  if (op === 'Squeeze') {
    const t = x();
    const axes = opset >= 13 ? optionalInts(inputs, 1, where) : intsAttr(node, 'axes');
    const drop = new Set(axes === undefined ? t.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : axes.map((a) => normalizeAxis(a, t.shape.length, where)));
    for (const i of drop) if (t.shape[i] !== 1) throw new PlanError(`${where}: cannot squeeze axis ${i} of size ${t.shape[i]}`);
    return [withValues(t.shape.filter((_, i) => !drop.has(i)), t.elemType, t.values)];
  }
  if (op === 'Shape') {
    const s = x().shape;
    const start = intAttr(node, 'start', 0);
    const end = intAttr(node, 'end', s.length);
    const from = Math.max(0, start < 0 ? start + s.length : start);
    const to = Math.min(s.length, end < 0 ? end + s.length : end);
    const values = s.slice(from, Math.max(from, to));
    return [{ shape: [values.length], elemType: DataType.INT64, values }];
  }
  if (op === 'Slice') {
    const t = x();
    const starts = constantInts(inputs, 1, 'starts', where);
    const ends = constantInts(inputs, 2, 'ends', where);
    const axes = optionalInts(inputs, 3, where) ?? starts.map((_, i) => i);
    const steps = optionalInts(inputs, 4, where) ?? starts.map(() => 1);
    const shape = [...t.shape];
    const ranges: Array<[number, number, number]> = t.shape.map((d) => [0, d, 1]);
    axes.forEach((axis, i) => {
      const a = normalizeAxis(axis, t.shape.length, where);
      const d = t.shape[a]!;
      const step = steps[i] ?? 1;
      if (step === 0) throw new PlanError(`${where}: step 0`);
      const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v < 0 ? v + d : v));
      const s = step > 0 ? clamp(starts[i]!, 0, d) : clamp(starts[i]!, -1, d - 1);
      const e = step > 0 ? clamp(ends[i]!, 0, d) : clamp(ends[i]!, -1, d - 1);
      shape[a] = Math.max(0, Math.ceil((e - s) / step));
      ranges[a] = [s, e, step];
    });
    let values: number[] | undefined;
    if (t.values && t.shape.length === 1) {
      const [s, e, step] = ranges[0]!;
      values = [];
      for (let i = s; step > 0 ? i < e : i > e; i += step) values.push(t.values[i]!);
    }
    return [withValues(shape, t.elemType, values)];
  }
  if (op === 'Expand') {
    const t = x();
    return [{ shape: broadcastShapes([t.shape, constantInts(inputs, 1, 'the target shape', where)], where), elemType: t.elemType }];
  }
  throw new PlanError(`${where}: operator ${op} is not supported by the memory planner`);
}
