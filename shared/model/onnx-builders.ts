/**
 * Small constructors for ONNX messages, shared by the loss head and the model zoo. They produce plain objects
 * in the decoded shape (onnx-types.ts), so built and parsed graphs are edited and encoded the same way.
 */
import {
  AttributeType,
  DataType,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfo,
} from './onnx-types.js';

export type AttributeValue = number | string | number[] | TensorProto | FloatAttr;

/**
 * An attribute from a JS value: an integral number is INT, other numbers FLOAT (wrap with `floatAttr` to force
 * FLOAT for an integral value), strings STRING, number arrays INTS, a TensorProto TENSOR.
 */
export function attribute(name: string, value: AttributeValue): AttributeProto {
  if (value instanceof FloatAttr) return { name, type: AttributeType.FLOAT, f: value.value };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  return { name, type: AttributeType.TENSOR, t: value };
}

/** Marks a number as a FLOAT attribute even when it is integral (e.g. alpha = 1). */
export class FloatAttr {
  constructor(readonly value: number) {}
}

export function floatAttr(value: number): FloatAttr {
  return new FloatAttr(value);
}

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: Record<string, AttributeValue> = {},
  name = outputs[0] ?? opType,
): NodeProto {
  return {
    op_type: opType,
    input: inputs,
    output: outputs,
    name,
    attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
  };
}

/** A float32 tensor with its data as little-endian raw_data (the form exporters write). */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorProto {
  return { name, dims: [...dims], data_type: DataType.FLOAT, raw_data: littleEndianBytes(data) };
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  return { name, dims: [...dims], data_type: DataType.INT64, int64_data: [...values] };
}

/** A Constant node holding `tensor`; constants built this way are never initializers, so never trainable. */
export function constantNode(output: string, tensor: TensorProto): NodeProto {
  return node('Constant', [], [output], { value: { ...tensor, name: output } });
}

export type DimSpec = number | string | null;

export function tensorValueInfo(name: string, elemType: number, shape: readonly DimSpec[] | undefined): ValueInfo {
  const tensorType: NonNullable<NonNullable<ValueInfo['type']>['tensor_type']> = { elem_type: elemType };
  if (shape !== undefined) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})),
    };
  }
  return { name, type: { tensor_type: tensorType } };
}

/** The bytes of a Float32Array in little-endian order, whatever the host's order. */
export function littleEndianBytes(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  if (HOST_LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } else {
    const view = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  }
  return out;
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A Reduce* node over `axes` (all axes when undefined). Opset 18 moved `axes` from an attribute to an optional
 * input for ReduceMean/ReduceMax/…, while ReduceSum made that move already at opset 13; this emits whichever
 * form the model's opset expects, adding a Constant for the axes input when needed.
 */
export function reduceNodes(
  op: 'ReduceMean' | 'ReduceSum' | 'ReduceMax',
  input: string,
  output: string,
  axes: number[] | undefined,
  keepdims: boolean,
  opset: number,
): NodeProto[] {
  const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  const keep = keepdims ? 1 : 0;
  if (axes === undefined) return [node(op, [input], [output], { keepdims: keep })];
  if (!axesAsInput) return [node(op, [input], [output], { axes, keepdims: keep })];
  const axesName = `${output}/axes`;
  return [
    constantNode(axesName, int64Tensor(axesName, [axes.length], axes)),
    node(op, [input, axesName], [output], { keepdims: keep }),
  ];
}
