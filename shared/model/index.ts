/**
 * Preparing ONNX models for in-place, backprop-free fine-tuning: trainable initializers become inputs fed from
 * one slab the agent owns, a loss head makes a run return one scalar, and the result is saved and loaded with a
 * verified manifest.
 */
export { ModelPreparationError } from './errors.js';
export { prepareModel, MIN_OPSET } from './prepare-model.js';
export type { PrepareOptions, PreparedModel } from './prepare-model.js';
export { bakeModel, narrowTrainable, scaleTrainable } from './transform-model.js';
export type { TensorScale } from './transform-model.js';
export { LOSS_KINDS, LOSS_OUTPUT, CORRECT_OUTPUT, LABELS_INPUT, TARGETS_INPUT } from './loss-head.js';
export type { LossKind } from './loss-head.js';
export { manifestSchema, parseManifest, MANIFEST_FORMAT, MANIFEST_VERSION } from './manifest.js';
export type { Manifest, ManifestInput, ManifestTensor } from './manifest.js';
export { writePrepared, loadPrepared, MODEL_FILE, SLAB_FILE, MANIFEST_FILE } from './prepared-store.js';
export type { WriteOptions } from './prepared-store.js';
export { createTrainableSession } from './trainable-session.js';
export type { TrainableSession, TrainableSessionOptions, RunResult, PerExampleRunResult, Feeds } from './trainable-session.js';
export { SLAB_ALIGNMENT, slabViews, paddingRanges, clearPadding } from './slab-layout.js';
export type { SlabTensor } from './slab-layout.js';
export { compilePattern, nameMatcher } from './name-pattern.js';
export type { NamePattern } from './name-pattern.js';
export { slabSha256 } from './hashing.js';
export { decodeModel, encodeModel } from './onnx-codec.js';
export type { ModelProto, GraphProto, NodeProto, TensorProto, ValueInfo } from './onnx-types.js';
export * from './default-model.js';
