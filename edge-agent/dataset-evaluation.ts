/** Loss and accuracy of the current weights on a whole dataset (held-out evaluation). */
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { TrainableSession } from '../shared/model/index.js';
import { feedsForBatch } from './batch-feeds.js';

export interface DatasetScore {
  /** Mean loss per example. */
  loss: number;
  /** Fraction of examples classified correctly. */
  accuracy: number;
  examples: number;
}

export async function scoreDataset(
  session: TrainableSession,
  dataset: LocalDataset<FeatureArray>,
  batchSize = 256,
): Promise<DatasetScore> {
  let lossSum = 0;
  let correct = 0;
  for (const batch of dataset.batches(batchSize, { shuffle: false })) {
    const result = await session.run(feedsForBatch(session.manifest, batch));
    lossSum += result.loss * batch.size;
    correct += result.correct ?? 0;
  }
  return { loss: lossSum / dataset.size, accuracy: correct / dataset.size, examples: dataset.size };
}
