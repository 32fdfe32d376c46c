/**
 * Memory planning for fine-tuning on small devices: shape inference with a bound batch size, the forward pass's
 * activation liveness, what backpropagation keeps, and the resulting peak memory of MeZO versus backprop (SGD,
 * momentum, Adam; with or without checkpointing), plus the largest zoo model that fits a budget.
 */
export { PlanError } from './plan-error.js';
export { planGraphFromModel, planGraphFromPrepared, integerValues } from './plan-graph.js';
export type { PlanGraph, PreparedLike, StaticTensor } from './plan-graph.js';
export { topologicalOrder } from './topological-order.js';
export { inferShapes, broadcastShapes, elementBytes, elementCount, tensorBytes } from './shape-inference.js';
export type { InferredGraph, InferredTensor, ShapeOptions } from './shape-inference.js';
export { activationPeak, VIEW_OPS } from './liveness.js';
export type { LivenessOptions, LivenessResult } from './liveness.js';
export { backwardStorage } from './backward-storage.js';
export type { BackwardStorage } from './backward-storage.js';
export { NODE_ORT_BASELINE, PYTORCH_BASELINE } from './runtime-baseline.js';
export type { RuntimeBaseline } from './runtime-baseline.js';
export { analyzeGraph, estimateMemory, estimateAll, checkpointedBytes, lowRankScratchBytes, METHODS, OPTIMIZER_STATE } from './memory-model.js';
export type { AnalyzeOptions, EstimateOptions, GraphMemoryFacts, MemoryEstimate, Method } from './memory-model.js';
export { CNN_FAMILY, MLP_FAMILY, TRANSFORMER_FAMILY, ZOO_FAMILIES, zooFamily, checkFamilyParam, familyGraph } from './zoo-family.js';
export type { ZooFamily } from './zoo-family.js';
export { largestFitting, largestInFamily, familyFits } from './budget-search.js';
export type { FamilyFit, FamilySearchOptions } from './budget-search.js';
export { parseByteSize, formatBytes } from './byte-size.js';
