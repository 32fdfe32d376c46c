/**
 * Agent-local datasets (docs/data.md): the LocalDataset abstraction with seeded epoch batching, the file
 * formats a device holds (JSONL, CSV, MZDS binary), the built-in MNIST and SpamAssassin datasets, and the
 * federated partitioners that decide which examples each agent holds.
 */
export { LocalDataset } from './dataset.js';
export type { Batch, BatchOptions, DatasetInit, FeatureArray, FeatureDtype } from './dataset.js';
export { rngFor, SeededRng } from './rng.js';
export type { Seed, StreamTag } from './rng.js';
export { fnv1a, fnv1aUpdate, FNV_OFFSET_BASIS } from './hash.js';
export { trainTestSplit } from './split.js';
export { concatDatasets } from './concat.js';
export type { Split, SplitOptions } from './split.js';
export * from './formats/index.js';
export * from './builtin/index.js';
export * from './partition/index.js';
