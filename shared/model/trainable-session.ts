/**
 * One onnxruntime session over a prepared model, with the trainable inputs bound to the slab.
 *
 * Each trainable input is an ort.Tensor whose data is a subarray view of the slab. onnxruntime-node wraps a
 * typed array's memory for the duration of a run instead of copying it, so perturbing the slab in place
 * (θ += εz) changes the next run's loss with no tensor re-created and no copy of the weights. Do not mutate the
 * slab while a run is in flight: await it first.
 */
import * as ort from 'onnxruntime-node';
import { ModelPreparationError, reasonOf } from './errors.js';
import type { Manifest, ManifestInput } from './manifest.js';
import type { PreparedModel } from './prepare-model.js';
import { CORRECT_OUTPUT, HEAD_PREFIX, LOSS_OUTPUT } from './loss-head.js';
import { decodeModel, encodeModel } from './onnx-codec.js';
import { tensorValueInfo } from './onnx-builders.js';
import { DataType } from './onnx-types.js';

/**
 * The cross-entropy head's log-probability of each example's label ([batch, 1]), exposed as an extra graph
 * output so record-level DP can clip per example from the same forward pass (fetched only when asked for).
 */
export const PER_EXAMPLE_LOG_PROB = `${HEAD_PREFIX}picked`;

export interface TrainableSessionOptions {
  /** Threads onnxruntime uses inside an operator (default: onnxruntime's choice, one per core). */
  intraOpThreads?: number;
  /** Threads across operators; only used with executionMode 'parallel'. */
  interOpThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** The slab to bind (default prepared.slab): any Float32Array of manifest.slabLength values the caller owns. */
  slab?: Float32Array;
}

export interface RunResult {
  loss: number;
  /** Correct predictions in the batch (cross-entropy only). */
  correct?: number;
}

/** A run's mean loss and each example's loss (record-level DP clips these). */
export interface PerExampleRunResult {
  loss: number;
  perExample: Float32Array;
}

export type Feeds = Record<string, ort.Tensor>;

export interface TrainableSession {
  readonly manifest: Manifest;
  /** The bound slab: write into it between runs to change the weights. */
  readonly slab: Float32Array;
  readonly session: ort.InferenceSession;
  /** The slab-backed tensors, by input name. */
  readonly parameters: ReadonlyMap<string, ort.Tensor>;
  /** Runs one batch (data inputs plus `labels`/`targets`) and returns the scalar loss (and `correct`). */
  run(feeds: Feeds): Promise<RunResult>;
  /** Runs one batch and returns every output tensor (for loss 'none'). */
  runOutputs(feeds: Feeds): Promise<Record<string, ort.Tensor>>;
  /** Runs one batch and returns the mean loss and each example's loss (cross-entropy models only). */
  runPerExample(feeds: Feeds): Promise<PerExampleRunResult>;
  release(): Promise<void>;
}

function checkThreads(value: number | undefined, name: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > 1024)) {
    throw new ModelPreparationError(`${name} must be an integer in [1, 1024], got ${String(value)}`);
  }
}

/**
 * Checks a batch against the manifest before onnxruntime sees it: every expected input present and nothing
 * else, element types and fixed dimensions as declared, symbolic dimensions (e.g. "batch") consistent across
 * inputs — which is what catches labels or targets that do not match the batch — and labels in [0, classes).
 */
function checkFeeds(manifest: Manifest, feeds: Feeds): void {
  if (feeds === null || typeof feeds !== 'object') throw new ModelPreparationError('feeds must be an object of ort.Tensor by input name');
  const expected: ManifestInput[] = [...manifest.dataInputs, ...(manifest.labelInput ? [manifest.labelInput] : [])];
  const names = new Set(expected.map((i) => i.name));
  for (const key of Object.keys(feeds)) {
    if (!names.has(key)) {
      const hint = manifest.tensors.some((t) => t.name === key) ? ' (it is a trainable weight, fed from the slab)' : '';
      throw new ModelPreparationError(`feeds.${key} is not an input of this model${hint}; expected ${[...names].join(', ')}`);
    }
  }
  const bound = new Map<string, { value: number; by: string }>();
  for (const input of expected) {
    const tensor = feeds[input.name];
    if (!(tensor instanceof ort.Tensor)) throw new ModelPreparationError(`feeds.${input.name} is missing (an ort.Tensor is required)`);
    if (tensor.type !== input.elemType) {
      throw new ModelPreparationError(`feeds.${input.name} must be ${input.elemType}, got ${tensor.type}`);
    }
    if (input.shape === null) continue;
    if (tensor.dims.length !== input.shape.length) {
      throw new ModelPreparationError(
        `feeds.${input.name} has shape [${tensor.dims.join(', ')}] but the model expects rank ${input.shape.length} ([${input.shape.map(String).join(', ')}])`,
      );
    }
    input.shape.forEach((dim, axis) => {
      const actual = tensor.dims[axis]!;
      if (typeof dim === 'number' && actual !== dim) {
        throw new ModelPreparationError(
          `feeds.${input.name} has shape [${tensor.dims.join(', ')}] but dimension ${axis} must be ${dim} ([${input.shape!.map(String).join(', ')}])`,
        );
      }
      if (typeof dim === 'string') {
        const previous = bound.get(dim);
        if (previous && previous.value !== actual) {
          throw new ModelPreparationError(
            `feeds.${input.name} dimension ${axis} ("${dim}") is ${actual} but ${previous.by} has ${dim} = ${previous.value}: shapes do not match`,
          );
        }
        if (!previous) bound.set(dim, { value: actual, by: `feeds.${input.name}` });
      }
    });
  }
  if (manifest.loss === 'cross-entropy' && manifest.classes !== null && manifest.labelInput) {
    const labels = feeds[manifest.labelInput.name]!.data as BigInt64Array;
    const classes = BigInt(manifest.classes);
    for (let i = 0; i < labels.length; i++) {
      if (labels[i]! < 0n || labels[i]! >= classes) {
        throw new ModelPreparationError(`feeds.${manifest.labelInput.name}[${i}] = ${labels[i]} is outside [0, ${manifest.classes})`);
      }
    }
  }
}

export async function createTrainableSession(prepared: PreparedModel, options: TrainableSessionOptions = {}): Promise<TrainableSession> {
  const { manifest } = prepared;
  checkThreads(options.intraOpThreads, 'options.intraOpThreads');
  checkThreads(options.interOpThreads, 'options.interOpThreads');
  const slab = options.slab ?? prepared.slab;
  if (!(slab instanceof Float32Array) || slab.length !== manifest.slabLength) {
    throw new ModelPreparationError(`options.slab must be a Float32Array of ${manifest.slabLength} values (manifest.slabLength)`);
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionMode: options.executionMode ?? 'sequential',
  };
  if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads;
  if (options.interOpThreads !== undefined) sessionOptions.interOpNumThreads = options.interOpThreads;
  // Cross-entropy heads compute each example's log-probability on the way to the mean; declaring it an output
  // costs nothing until it is fetched.
  let modelBytes = prepared.model;
  if (manifest.loss === 'cross-entropy') {
    const decoded = decodeModel(prepared.model, 'prepared model');
    const graph = decoded.graph!;
    if (!(graph.output ?? []).some((o) => o.name === PER_EXAMPLE_LOG_PROB)) {
      graph.output = [...(graph.output ?? []), tensorValueInfo(PER_EXAMPLE_LOG_PROB, DataType.FLOAT, undefined)];
      modelBytes = encodeModel(decoded);
    }
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, sessionOptions);
  } catch (err) {
    throw new ModelPreparationError(`onnxruntime could not load the prepared model: ${reasonOf(err)}`, { cause: err });
  }

  // Created once; the tensors keep pointing at the slab for the life of the session.
  const parameters = new Map<string, ort.Tensor>(
    manifest.tensors.map((t) => [t.name, new ort.Tensor('float32', slab.subarray(t.offset, t.offset + t.length), t.shape)]),
  );
  const parameterFeeds = Object.fromEntries(parameters);
  // run() fetches the head's scalars only, not the per-example output.
  const fetched = manifest.loss === 'cross-entropy' ? [LOSS_OUTPUT, CORRECT_OUTPUT] : [LOSS_OUTPUT];

  const runOutputs = async (feeds: Feeds): Promise<Record<string, ort.Tensor>> => {
    checkFeeds(manifest, feeds);
    return (await session.run({ ...feeds, ...parameterFeeds })) as Record<string, ort.Tensor>;
  };

  return {
    manifest,
    slab,
    session,
    parameters,
    runOutputs,
    async run(feeds) {
      if (manifest.loss === 'none') throw new ModelPreparationError("run() needs a loss head; this model was prepared with loss 'none' (use runOutputs)");
      checkFeeds(manifest, feeds);
      const out = (await session.run({ ...feeds, ...parameterFeeds }, fetched)) as Record<string, ort.Tensor>;
      const result: RunResult = { loss: Number(out[LOSS_OUTPUT]!.data[0]) };
      if (out[CORRECT_OUTPUT] !== undefined) result.correct = Number(out[CORRECT_OUTPUT].data[0]);
      return result;
    },
    async runPerExample(feeds) {
      if (manifest.loss !== 'cross-entropy') {
        throw new ModelPreparationError(`per-example losses need a cross-entropy head; this model was prepared with loss '${manifest.loss}'`);
      }
      checkFeeds(manifest, feeds);
      const out = (await session.run({ ...feeds, ...parameterFeeds }, [LOSS_OUTPUT, PER_EXAMPLE_LOG_PROB])) as Record<string, ort.Tensor>;
      const logProb = out[PER_EXAMPLE_LOG_PROB]!.data as Float32Array;
      const perExample = new Float32Array(logProb.length);
      for (let i = 0; i < logProb.length; i++) perExample[i] = -logProb[i]!;
      return { loss: Number(out[LOSS_OUTPUT]!.data[0]), perExample };
    },
    async release() {
      await session.release();
    },
  };
}
