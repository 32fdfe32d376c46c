/** Loss and accuracy of the current weights on a whole dataset (held-out evaluation). */
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { RunResult } from '../shared/model/index.js';
import type { BatchData } from './batch-feeds.js';

export interface DatasetScore {
  /** Mean loss per example. */
  loss: number;
  /** Fraction of examples classified correctly. */
  accuracy: number;
  examples: number;
}

/** Anything that runs the loss head on a batch: a MezoBackend, or a session wrapped with feedsForBatch. */
export interface BatchRunner {
  run(batch: BatchData): Promise<RunResult>;
}

export async function scoreDataset(
  runner: BatchRunner,
  dataset: LocalDataset<FeatureArray>,
  batchSize = 256,
): Promise<DatasetScore> {
  let lossSum = 0;
  let correct = 0;
  for (const batch of dataset.batches(batchSize, { shuffle: false })) {
    const result = await runner.run(batch);
    lossSum += result.loss * batch.size;
    correct += result.correct ?? 0;
  }
  return { loss: lossSum / dataset.size, accuracy: correct / dataset.size, examples: dataset.size };
}
