/**
 * Label-shard partition (the pathological non-IID split of McMahan et al., 2017): sort the examples by label,
 * cut the sorted list into numAgents × shardsPerAgent equal shards, deal shardsPerAgent random shards to
 * each agent. With 2 shards per agent most agents see only one or two classes.
 */
import type { LocalDataset } from '../dataset.js';
import { requireInt } from '../describe.js';
import { SeededRng } from '../rng.js';
import { checkBaseOptions, makePartition, type BasePartitionOptions, type Partition } from './partition.js';

export interface LabelShardOptions extends BasePartitionOptions {
  /** Shards per agent, k (default 2). */
  shardsPerAgent?: number;
}

/**
 * Every example is assigned (shard s covers sorted positions [⌊s·N/S⌋, ⌊(s+1)·N/S⌋)), so shard sizes differ
 * by at most one. Within a label, examples are ordered by a seeded shuffle so a shard is a random sample of
 * its label. Throws when there are fewer examples than shards (an agent could get nothing).
 */
export function partitionLabelShards(dataset: LocalDataset, options: LabelShardOptions): Partition {
  const { numAgents, seed } = checkBaseOptions(options, 'partitionLabelShards');
  const perAgent = requireInt(options.shardsPerAgent ?? 2, 'partitionLabelShards: options.shardsPerAgent', 1, 1 << 16);
  const n = dataset.size;
  const shards = numAgents * perAgent;
  if (shards > n) {
    throw new RangeError(
      `partitionLabelShards: numAgents × shardsPerAgent (${numAgents} × ${perAgent} = ${shards}) ` +
        `exceeds the dataset size (${n})`,
    );
  }
  const order = new SeededRng(seed, 'label-shards', 'order').permutation(n);
  const labels = dataset.labels();
  // Stable sort by label over a shuffled order: a shuffle within each label.
  const sorted = Array.from(order).sort((a, b) => labels[a]! - labels[b]!);
  const deal = new SeededRng(seed, 'label-shards', 'deal').permutation(shards);
  const lists: number[][] = Array.from({ length: numAgents }, () => []);
  for (let k = 0; k < numAgents; k++) {
    for (let j = 0; j < perAgent; j++) {
      const s = deal[k * perAgent + j]!;
      const from = Math.floor((s * n) / shards);
      const to = Math.floor(((s + 1) * n) / shards);
      for (let p = from; p < to; p++) lists[k]!.push(sorted[p]!);
    }
  }
  return makePartition('label-shards', lists, n);
}
