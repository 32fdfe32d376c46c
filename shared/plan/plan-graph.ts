/**
 * The graph the planner works on, from a prepared model (trainable weights are the manifest's slab tensors) or a
 * plain ONNX model (trainable weights are its float32 initializers, as prepareModel selects by default). Only
 * shapes and small integer values are read; weight data is never copied.
 */
import { buildLossHead, type LossKind } from '../model/loss-head.js';
import type { Manifest } from '../model/manifest.js';
import { decodeModel } from '../model/onnx-codec.js';
import { declaredShape } from '../model/prepare-model.js';
import { DataType, int64ToNumber, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfo } from '../model/onnx-types.js';
import { PlanError } from './plan-error.js';

/** A tensor known before the graph runs: a weight, a frozen initializer or a Constant's value. */
export interface StaticTensor {
  shape: number[];
  elemType: number;
  /** The values of a small integer tensor (shapes, axes, indices), when readable. */
  values?: number[];
}

export interface PlanGraph {
  /** Nodes in the order the model lists them (topologically sorted by the planner). */
  nodes: NodeProto[];
  /** Trainable float32 weights, by name. */
  trainable: Map<string, StaticTensor>;
  /** Initializers that stay frozen (held by the runtime, not trained), by name. */
  frozen: Map<string, StaticTensor>;
  /** Inputs the caller feeds per batch (data, labels), in declared order. */
  dataInputs: ValueInfo[];
  /** Graph output names. */
  outputs: string[];
  opset: number;
  /** The slab's length in float32 values (a prepared model's, alignment padding included). */
  slabLength?: number;
}

/** A prepared model as the planner needs it: the model bytes and the manifest (no slab). */
export interface PreparedLike {
  model: Uint8Array;
  manifest: Pick<Manifest, 'tensors' | 'slabLength'>;
}

const MAX_VALUES = 64;

function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d, i) => int64ToNumber(d, `${t.name} dim ${i}`));
}

/** The values of a small int64/int32 tensor (from int64_data, int32_data or raw_data), else undefined. */
export function integerValues(t: TensorProto): number[] | undefined {
  const count = dimsOf(t).reduce((a, b) => a * b, 1);
  if (count > MAX_VALUES) return undefined;
  if (t.data_type === DataType.INT64) {
    if (t.int64_data && t.int64_data.length > 0) return t.int64_data.map((v) => int64ToNumber(v, `${t.name} value`));
    if (t.raw_data && t.raw_data.length === count * 8) {
      const view = new DataView(t.raw_data.buffer, t.raw_data.byteOffset, t.raw_data.byteLength);
      return Array.from({ length: count }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    }
    return count === 0 ? [] : undefined;
  }
  if (t.data_type === DataType.INT32) {
    if (t.int32_data && t.int32_data.length > 0) return [...t.int32_data];
    if (t.raw_data && t.raw_data.length === count * 4) {
      const view = new DataView(t.raw_data.buffer, t.raw_data.byteOffset, t.raw_data.byteLength);
      return Array.from({ length: count }, (_, i) => view.getInt32(i * 4, true));
    }
    return count === 0 ? [] : undefined;
  }
  return undefined;
}

export function staticTensor(t: TensorProto): StaticTensor {
  const values = integerValues(t);
  return { shape: dimsOf(t), elemType: t.data_type ?? DataType.FLOAT, ...(values !== undefined ? { values } : {}) };
}

function opsetOf(model: ModelProto): number {
  const entry = (model.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (entry === undefined) throw new PlanError('the model imports no ai.onnx opset');
  return int64ToNumber(entry.version, 'opset version');
}

function fromModel(model: ModelProto, trainableNames: Set<string> | undefined, manifestShapes?: Map<string, number[]>): PlanGraph {
  const graph: GraphProto = model.graph ?? {};
  const trainable = new Map<string, StaticTensor>();
  const frozen = new Map<string, StaticTensor>();
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    const isTrainable = trainableNames === undefined ? t.data_type === DataType.FLOAT : trainableNames.has(name);
    (isTrainable ? trainable : frozen).set(name, staticTensor(t));
  }
  if (manifestShapes) for (const [name, shape] of manifestShapes) trainable.set(name, { shape, elemType: DataType.FLOAT });
  const dataInputs = (graph.input ?? []).filter((v) => !trainable.has(v.name ?? '') && !frozen.has(v.name ?? ''));
  return {
    nodes: graph.node ?? [],
    trainable,
    frozen,
    dataInputs,
    outputs: (graph.output ?? []).map((o) => o.name ?? ''),
    opset: opsetOf(model),
  };
}

/**
 * A plain ONNX model (bytes or decoded): every float32 initializer is trainable, and the loss head a prepared
 * model would get is appended to a copy of the node list (default cross-entropy on the first output).
 */
export function planGraphFromModel(model: Uint8Array | ModelProto, options: { source?: string; loss?: LossKind } = {}): PlanGraph {
  const decoded = model instanceof Uint8Array ? decodeModel(model, options.source ?? 'model') : model;
  const graph = fromModel(decoded, undefined);
  const loss = options.loss ?? 'cross-entropy';
  if (loss === 'none') return graph;
  const output = decoded.graph?.output?.[0];
  if (output === undefined) throw new PlanError(`${options.source ?? 'model'}: the graph has no output to attach a ${loss} loss to`);
  const head = buildLossHead(loss, output.name ?? '', declaredShape(output), graph.opset);
  return {
    ...graph,
    nodes: [...graph.nodes, ...head.nodes],
    dataInputs: [...graph.dataInputs, head.labelInput],
    outputs: head.outputs.map((o) => o.name ?? ''),
  };
}

/** A prepared model: the slab tensors are trainable (they are graph inputs there), initializers frozen. */
export function planGraphFromPrepared(prepared: PreparedLike, source = 'prepared model'): PlanGraph {
  const decoded = decodeModel(prepared.model, source);
  const shapes = new Map(prepared.manifest.tensors.map((t) => [t.name, t.shape]));
  return { ...fromModel(decoded, new Set(shapes.keys()), shapes), slabLength: prepared.manifest.slabLength };
}
