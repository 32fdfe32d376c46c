/**
 * prepareModel: turns any ONNX model into one an agent can fine-tune in place.
 *
 * onnxruntime pre-packs initializers when it creates a session, so writing into their memory afterwards has no
 * effect. The selected (trainable) initializers therefore become graph inputs whose values the agent feeds from
 * memory it owns: one contiguous Float32Array, the slab, with each tensor at an aligned offset. Frozen
 * initializers stay in the graph. A loss head makes one run return one scalar.
 *
 * Nothing is written to disk here; see prepared-store.ts for that.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ModelPreparationError, reasonOf } from './errors.js';
import { sha256Hex, slabSha256 } from './hashing.js';
import { buildLossHead, headNames, HEAD_PREFIX, LOSS_KINDS, type LossKind } from './loss-head.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest, type ManifestInput } from './manifest.js';
import { describePatterns, nameMatcher, type NamePattern } from './name-pattern.js';
import { tensorValueInfo, type DimSpec } from './onnx-builders.js';
import { decodeModel, encodeModel } from './onnx-codec.js';
import { DataType, elementTypeName, int64ToNumber, type GraphProto, type ModelProto, type TensorProto, type ValueInfo } from './onnx-types.js';
import { layoutSlab, SLAB_ALIGNMENT } from './slab-layout.js';
import { inlineExternal, isExternal, readFloat32Into, tensorDims } from './tensor-data.js';

export const MIN_OPSET = 13;
// protobuf messages are limited to 2 GiB; a prepared model beyond that would need external data of its own.
const MAX_MODEL_BYTES = 2 ** 31 - 1;

export interface PrepareOptions {
  /** Initializers to train: glob(s), "/regex/" string(s) or RegExp(s). Default: every float32 initializer. */
  trainable?: NamePattern | readonly NamePattern[];
  /** The loss head to append (default 'cross-entropy'). */
  loss?: LossKind;
  /** The graph output the loss reads (default the first output). */
  output?: string;
}

export interface PreparedModel {
  /** The prepared ONNX model (trainable weights as inputs, loss head appended). */
  model: Uint8Array;
  /** The base values of every trainable tensor, laid out as manifest.tensors says. */
  slab: Float32Array;
  manifest: Manifest;
  /** Non-fatal findings (e.g. fields the schema does not know, which re-encoding drops). */
  warnings: string[];
}

/** The default-domain opset the model imports; MIN_OPSET or newer is required. */
export function defaultOpset(model: ModelProto, source: string): number {
  const entry = (model.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (entry === undefined) {
    throw new ModelPreparationError(`${source}: the model imports no ai.onnx opset (opset_import lists only custom domains)`);
  }
  const version = int64ToNumber(entry.version, 'opset version');
  if (version < MIN_OPSET) {
    throw new ModelPreparationError(
      `${source}: opset ${version} is not supported; re-export the model with opset ${MIN_OPSET} or newer`,
    );
  }
  return version;
}

/** A value's declared tensor shape (undefined when the model does not say), with symbolic dims as strings. */
export function declaredShape(info: ValueInfo | undefined): DimSpec[] | undefined {
  const shape = info?.type?.tensor_type?.shape;
  if (shape === undefined) return undefined;
  return (shape.dim ?? []).map((d, i) => {
    if (d.dim_value !== undefined && d.dim_value !== null) return int64ToNumber(d.dim_value, `${info?.name} dim ${i}`);
    if (d.dim_param) return d.dim_param;
    return null;
  });
}

function describeInput(info: ValueInfo): ManifestInput {
  return {
    name: info.name ?? '',
    elemType: elementTypeName(info.type?.tensor_type?.elem_type),
    shape: declaredShape(info) ?? null,
  };
}

function classCount(shape: DimSpec[] | undefined): number | null {
  const classes = shape?.[1];
  return typeof classes === 'number' && classes > 0 ? classes : null;
}

function checkOptions(options: unknown): Required<Pick<PrepareOptions, 'loss'>> & PrepareOptions {
  if (options === null || typeof options !== 'object') {
    throw new ModelPreparationError(`options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const o = options as PrepareOptions;
  const loss = o.loss ?? 'cross-entropy';
  if (!LOSS_KINDS.includes(loss)) {
    throw new ModelPreparationError(`options.loss must be one of ${LOSS_KINDS.join(', ')}, got ${JSON.stringify(o.loss)}`);
  }
  if (o.output !== undefined && (typeof o.output !== 'string' || o.output.length === 0)) {
    throw new ModelPreparationError(`options.output must be a non-empty output name, got ${JSON.stringify(o.output)}`);
  }
  return { ...o, loss };
}

function readSource(source: Uint8Array | string): { bytes: Uint8Array; modelDir: string | undefined; label: string } {
  if (typeof source === 'string') {
    const path = resolve(source);
    try {
      return { bytes: readFileSync(path), modelDir: dirname(path), label: path };
    } catch (err) {
      throw new ModelPreparationError(`cannot read model file ${path}: ${reasonOf(err)}`, { cause: err });
    }
  }
  if (source instanceof Uint8Array) return { bytes: source, modelDir: undefined, label: 'model' };
  throw new ModelPreparationError(`model must be ONNX bytes (Uint8Array) or a file path, got ${typeof source}`);
}

/** Every name already used in the graph's value namespace. */
function graphNames(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.value_info ?? [])]) names.add(v.name ?? '');
  for (const t of graph.initializer ?? []) names.add(t.name ?? '');
  for (const s of graph.sparse_initializer ?? []) names.add(s.values?.name ?? '');
  for (const n of graph.node ?? []) for (const out of n.output ?? []) names.add(out);
  names.delete('');
  return names;
}

function selectTrainable(initializers: TensorProto[], trainable: PrepareOptions['trainable'], source: string): Set<TensorProto> {
  if (trainable === undefined) {
    const floats = initializers.filter((t) => t.data_type === DataType.FLOAT);
    if (floats.length === 0) {
      throw new ModelPreparationError(`${source}: the model has no float32 initializers to train (it has ${initializers.length} initializers)`);
    }
    return new Set(floats);
  }
  const matches = nameMatcher(trainable as NamePattern | NamePattern[]);
  const selected = initializers.filter((t) => matches(t.name ?? ''));
  if (selected.length === 0) {
    const examples = initializers.slice(0, 5).map((t) => JSON.stringify(t.name)).join(', ');
    throw new ModelPreparationError(
      `${source}: trainable pattern ${describePatterns(trainable as NamePattern)} selects no initializer ` +
        `(the model has ${initializers.length}${initializers.length > 0 ? `, e.g. ${examples}` : ''})`,
    );
  }
  const notFloat = selected.filter((t) => t.data_type !== DataType.FLOAT);
  if (notFloat.length > 0) {
    const list = notFloat.slice(0, 5).map((t) => `${t.name} (${elementTypeName(t.data_type)})`).join(', ');
    throw new ModelPreparationError(
      `${source}: trainable pattern ${describePatterns(trainable as NamePattern)} selects ${notFloat.length} non-float32 initializer(s): ${list}; only float32 tensors can be trained`,
    );
  }
  return new Set(selected);
}

/**
 * Prepares `source` (ONNX bytes, or a path — required when initializers use external data) for in-place
 * fine-tuning. Throws ModelPreparationError naming the problem; has no side effects.
 */
export function prepareModel(source: Uint8Array | string, options: PrepareOptions = {}): PreparedModel {
  const opts = checkOptions(options);
  const { bytes, modelDir, label } = readSource(source);
  const model = decodeModel(bytes, label);
  const opset = defaultOpset(model, label);
  const graph = model.graph!;
  const warnings: string[] = [];

  // protobufjs drops fields it does not know; a size change on re-encoding is the visible trace of that.
  const reencoded = encodeModel(model).length;
  if (reencoded !== bytes.length) {
    warnings.push(
      `re-encoding the model changed its size by ${reencoded - bytes.length} bytes: it may use ONNX fields this schema does not declare (they are dropped) or a non-canonical encoding`,
    );
  }

  const initializers = graph.initializer ?? [];
  const seen = new Set<string>();
  for (const t of initializers) {
    if (!t.name) throw new ModelPreparationError(`${label}: the graph has an initializer without a name`);
    if (seen.has(t.name)) throw new ModelPreparationError(`${label}: initializer ${JSON.stringify(t.name)} appears twice`);
    seen.add(t.name);
  }

  // Check every name the head will add before touching anything.
  const names = graphNames(graph);
  const collisions = headNames(opts.loss).filter((n) => names.has(n));
  const prefixed = [...names].filter((n) => n.startsWith(HEAD_PREFIX));
  if (collisions.length > 0 || prefixed.length > 0) {
    const list = [...collisions, ...prefixed.slice(0, 3)].map((n) => JSON.stringify(n)).join(', ');
    throw new ModelPreparationError(
      `${label}: the model already uses the name(s) ${list}, which the ${opts.loss} head needs for its own inputs/outputs; rename them in the model`,
    );
  }

  const outputs = graph.output ?? [];
  let lossOutput: ValueInfo | undefined;
  if (opts.loss !== 'none') {
    if (outputs.length === 0) throw new ModelPreparationError(`${label}: the graph has no outputs to attach a loss to`);
    lossOutput = opts.output === undefined ? outputs[0] : outputs.find((o) => o.name === opts.output);
    if (lossOutput === undefined) {
      throw new ModelPreparationError(
        `${label}: options.output ${JSON.stringify(opts.output)} is not a graph output (outputs: ${outputs.map((o) => o.name).join(', ')})`,
      );
    }
    const elemType = lossOutput.type?.tensor_type?.elem_type;
    if (elemType !== undefined && elemType !== DataType.FLOAT) {
      throw new ModelPreparationError(
        `${label}: output ${JSON.stringify(lossOutput.name)} is ${elementTypeName(elemType)}; the ${opts.loss} loss needs float32`,
      );
    }
  } else if (opts.output !== undefined) {
    throw new ModelPreparationError(`options.output names the output a loss reads, but options.loss is 'none'`);
  }

  const selected = selectTrainable(initializers, opts.trainable, label);
  const trainable = initializers.filter((t) => selected.has(t));
  const layout = layoutSlab(trainable.map((t) => ({ name: t.name!, shape: tensorDims(t) })));
  const slab = new Float32Array(layout.length);
  trainable.forEach((t, i) => {
    const { offset, length } = layout.tensors[i]!;
    readFloat32Into(t, slab.subarray(offset, offset + length), modelDir);
  });
  const head = lossOutput === undefined ? undefined : buildLossHead(opts.loss as Exclude<LossKind, 'none'>, lossOutput.name!, declaredShape(lossOutput), opset);

  // From here on the decoded model is edited in place; it is not used again if anything throws.
  const frozen = initializers.filter((t) => !selected.has(t));
  for (const t of frozen) if (isExternal(t)) inlineExternal(t, modelDir);
  const initializerNames = new Set(initializers.map((t) => t.name!));
  const trainableNames = new Set(trainable.map((t) => t.name!));
  const dataInputs = (graph.input ?? []).filter((v) => !initializerNames.has(v.name ?? ''));
  graph.initializer = frozen;
  graph.input = [
    // Data inputs, and frozen initializers an old exporter also declared as (overridable) inputs, in order.
    ...(graph.input ?? []).filter((v) => !trainableNames.has(v.name ?? '')),
    ...(head ? [head.labelInput] : []),
    // Declared afresh with the exact shape, even where an old exporter already listed them as inputs.
    ...trainable.map((t) => tensorValueInfo(t.name!, DataType.FLOAT, tensorDims(t))),
  ];
  if (head) {
    graph.node = [...(graph.node ?? []), ...head.nodes];
    graph.output = head.outputs;
  }
  const prepared = encodeModel(model);
  if (prepared.length > MAX_MODEL_BYTES) {
    throw new ModelPreparationError(
      `${label}: the prepared model would be ${prepared.length} bytes, over protobuf's 2 GiB limit; select more initializers as trainable`,
    );
  }

  const parameterCount = layout.tensors.reduce((a, t) => a + t.length, 0);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    opset,
    irVersion: int64ToNumber(model.ir_version, 'ir_version'),
    loss: opts.loss,
    lossOutput: lossOutput?.name ?? null,
    labelInput: head ? describeInput(head.labelInput) : null,
    classes: opts.loss === 'cross-entropy' ? classCount(declaredShape(lossOutput)) : null,
    dataInputs: dataInputs.map(describeInput),
    outputs: (graph.output ?? []).map((o) => o.name ?? ''),
    alignment: SLAB_ALIGNMENT,
    tensors: layout.tensors,
    slabLength: layout.length,
    parameterCount,
    slabSha256: slabSha256(slab),
    sourceSha256: sha256Hex(bytes),
  };
  return { model: prepared, slab, manifest, warnings };
}
