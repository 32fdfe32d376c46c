/** Models built in code, deterministic from a seed, for tests, benchmarks and demos. */
export { buildMlp } from './mlp.js';
export type { MlpOptions } from './mlp.js';
export { buildCnn } from './cnn.js';
export type { CnnOptions } from './cnn.js';
export { buildTransformer } from './transformer.js';
export type { TransformerOptions } from './transformer.js';
export { GraphBuilder, irVersionFor } from './graph-builder.js';
export type { Init } from './graph-builder.js';
export type { ZooModel, CommonZooOptions } from './zoo-model.js';
