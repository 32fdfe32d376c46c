/**
 * Peak memory of fine-tuning a graph at a batch size, by method.
 *
 * MeZO (forward passes only, weights perturbed in place):
 *   weights (the slab) + frozen initializers and constants + the forward's peak of live activations + runtime.
 * Backpropagation with an optimizer:
 *   weights + gradients (one per weight) + optimizer state (SGD 0, momentum 1, Adam 2 per weight)
 *   + max(activations kept for backward + two gradients in flight, the optimizer's temporaries)
 *   + runtime.
 * The activation term and the optimizer step do not overlap in time: the graph's saved tensors are freed when
 * the backward pass ends, before the optimizer runs. With activation checkpointing (√-checkpointing over L
 * weight layers) about 2·√L layers' worth of the saved activations are kept instead of all L.
 */
import type { PlanGraph } from './plan-graph.js';
import { activationPeak } from './liveness.js';
import { backwardStorage } from './backward-storage.js';
import { inferShapes, tensorBytes, type ShapeOptions } from './shape-inference.js';
import { NODE_ORT_BASELINE, type RuntimeBaseline } from './runtime-baseline.js';
import { PlanError } from './plan-error.js';

export type Method = 'mezo' | 'sgd' | 'momentum' | 'adam';
export const METHODS: readonly Method[] = ['mezo', 'sgd', 'momentum', 'adam'];
/** Optimizer state per weight, in weights' worth. */
export const OPTIMIZER_STATE: Readonly<Record<Exclude<Method, 'mezo'>, number>> = { sgd: 0, momentum: 1, adam: 2 };

/** What the memory model needs to know about a graph at one batch size. */
export interface GraphMemoryFacts {
  batch: number;
  parameters: number;
  /** Trainable weights (the slab: aligned float32). */
  weightBytes: number;
  /** Frozen initializers and Constant values. */
  staticBytes: number;
  /** The largest single trainable tensor. */
  largestWeightBytes: number;
  /** The forward pass's peak of live activations (data inputs included). */
  forwardPeakBytes: number;
  forwardPeakNode: string;
  /** Data inputs (held by the caller through the step). */
  inputBytes: number;
  /** Activations kept for the backward pass. */
  storedActivationBytes: number;
  largestGradientBytes: number;
  /** Weight layers (Gemm/MatMul/Conv on a trainable weight). */
  layers: number;
  /**
   * Columns of the widest trainable matrix (a tensor of ≥ 2 dimensions: rows = the first, cols = the rest),
   * which low-rank noise's per-call scratch scales with. 0: none.
   */
  widestMatrixCols?: number;
}

export interface MemoryEstimate {
  method: Method;
  checkpointing: boolean;
  weights: number;
  gradients: number;
  optimizerState: number;
  activations: number;
  baseline: number;
  total: number;
  /** MeZO with low-rank noise: the noise kernel's per-call scratch (lowRankScratchBytes), counted in optimizerState. */
  noiseScratch?: number;
}

export interface AnalyzeOptions extends ShapeOptions {
  /** The slab's length in float32 values when known (a prepared model): includes alignment padding. */
  slabLength?: number;
}

export function analyzeGraph(graph: PlanGraph, options: AnalyzeOptions): GraphMemoryFacts {
  const inferred = inferShapes(graph, options);
  const isStatic = (name: string): boolean => graph.trainable.has(name) || graph.frozen.has(name);
  const held = graph.dataInputs.map((i) => i.name ?? '');
  const forward = activationPeak(inferred, { isStatic, held, outputs: graph.outputs });
  const storage = backwardStorage(graph, inferred);
  let parameters = 0;
  let largestWeightBytes = 0;
  let widestMatrixCols = 0;
  for (const t of graph.trainable.values()) {
    if (t.shape.length >= 2) widestMatrixCols = Math.max(widestMatrixCols, t.shape.slice(1).reduce((a, b) => a * b, 1));
    const bytes = tensorBytes(t);
    parameters += bytes / 4;
    largestWeightBytes = Math.max(largestWeightBytes, bytes);
  }
  let staticBytes = 0;
  for (const t of graph.frozen.values()) staticBytes += tensorBytes(t);
  for (const node of inferred.order) {
    if (node.op_type !== 'Constant') continue;
    for (const out of node.output ?? []) {
      const t = inferred.tensors.get(out);
      if (t) staticBytes += tensorBytes(t);
    }
  }
  const inputBytes = held.reduce((a, name) => a + tensorBytes(inferred.tensors.get(name)!), 0);
  return {
    batch: options.batch,
    parameters,
    weightBytes: 4 * (options.slabLength ?? graph.slabLength ?? parameters),
    staticBytes,
    largestWeightBytes,
    forwardPeakBytes: forward.peakBytes,
    forwardPeakNode: forward.peakNode,
    inputBytes,
    storedActivationBytes: storage.storedBytes,
    largestGradientBytes: storage.largestGradientBytes,
    layers: storage.layers,
    widestMatrixCols,
  };
}

export interface EstimateOptions {
  checkpointing?: boolean;
  /** MeZO with low-rank (LOZO) noise of this rank: its per-call scratch is counted. */
  rank?: number;
  baseline?: RuntimeBaseline;
}

/**
 * Low-rank noise's scratch per noise call: V for the columns of the widest matrix plus U for a row, float32,
 * r·(cols + 2) values (docs/noise.md); counted 4 times over for up to 4 native noise threads, each with its own,
 * or the TypeScript kernel's buffer that grows by doubling. O((m + n)·r), nothing per parameter.
 */
export function lowRankScratchBytes(widestMatrixCols: number, rank: number): number {
  if (!Number.isInteger(rank) || rank < 1 || rank > 64) throw new PlanError(`rank must be an integer in [1, 64], got ${rank}`);
  return 4 * 4 * rank * (widestMatrixCols + 2);
}

/** Saved activations under √-checkpointing: about 2·√L of L layers' worth, never more than all of them. */
export function checkpointedBytes(storedBytes: number, layers: number): number {
  if (layers <= 1) return storedBytes;
  return Math.min(storedBytes, Math.round((storedBytes * 2 * Math.sqrt(layers)) / layers));
}

export function estimateMemory(facts: GraphMemoryFacts, method: Method, options: EstimateOptions = {}): MemoryEstimate {
  if (!METHODS.includes(method)) throw new PlanError(`method must be one of ${METHODS.join(', ')}, got ${JSON.stringify(method)}`);
  const baseline = (options.baseline ?? NODE_ORT_BASELINE).bytes;
  const checkpointing = method !== 'mezo' && (options.checkpointing ?? false);
  const weights = facts.weightBytes + facts.staticBytes;
  if (method === 'mezo') {
    const activations = facts.forwardPeakBytes;
    const noiseScratch = options.rank === undefined ? 0 : lowRankScratchBytes(facts.widestMatrixCols ?? 0, options.rank);
    return {
      method,
      checkpointing: false,
      weights,
      gradients: 0,
      optimizerState: noiseScratch,
      activations,
      baseline,
      total: weights + noiseScratch + activations + baseline,
      ...(options.rank === undefined ? {} : { noiseScratch }),
    };
  }
  const gradients = facts.weightBytes;
  const optimizerState = OPTIMIZER_STATE[method] * facts.weightBytes;
  const stored = checkpointing ? checkpointedBytes(facts.storedActivationBytes, facts.layers) : facts.storedActivationBytes;
  const backward = facts.inputBytes + stored + 2 * facts.largestGradientBytes;
  // Adam (single-tensor form) builds its denominator √v̂ + ε one weight tensor at a time, through two
  // temporaries of that tensor's size (the root, then the bias-corrected quotient).
  const optimizerTemporary = method === 'adam' ? 2 * facts.largestWeightBytes : 0;
  const activations = Math.max(backward, facts.forwardPeakBytes, optimizerTemporary);
  return {
    method,
    checkpointing,
    weights,
    gradients,
    optimizerState,
    activations,
    baseline,
    total: weights + gradients + optimizerState + activations + baseline,
  };
}

/** Every method, with and without checkpointing for backprop. */
export function estimateAll(facts: GraphMemoryFacts, options: Omit<EstimateOptions, 'checkpointing'> = {}): MemoryEstimate[] {
  const out: MemoryEstimate[] = [estimateMemory(facts, 'mezo', options)];
  for (const method of ['sgd', 'momentum', 'adam'] as const) {
    out.push(estimateMemory(facts, method, { ...options, checkpointing: false }));
    out.push(estimateMemory(facts, method, { ...options, checkpointing: true }));
  }
  return out;
}
