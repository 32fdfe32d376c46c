/** IID partition: one seeded permutation of the dataset, cut into consecutive runs, one per agent. */
import type { LocalDataset } from '../dataset.js';
import { requireInt } from '../describe.js';
import { SeededRng } from '../rng.js';
import { checkBaseOptions, makePartition, type BasePartitionOptions, type Partition } from './partition.js';

export interface IidOptions extends BasePartitionOptions {
  /**
   * Examples per agent. Default: all examples, sizes differing by at most one (the first size mod numAgents
   * agents get one more). With a value, exactly that many each and the rest unassigned.
   */
  perAgent?: number;
}

/** Uniformly random, disjoint shares. Throws when an agent would get nothing (numAgents > dataset size). */
export function partitionIid(dataset: LocalDataset, options: IidOptions): Partition {
  const { numAgents, seed } = checkBaseOptions(options, 'partitionIid');
  const n = dataset.size;
  if (numAgents > n) {
    throw new RangeError(
      `partitionIid: options.numAgents (${numAgents}) exceeds the dataset size (${n}); every agent needs an example`,
    );
  }
  let sizes: number[];
  if (options.perAgent === undefined) {
    const base = Math.floor(n / numAgents);
    sizes = Array.from({ length: numAgents }, (_, k) => base + (k < n % numAgents ? 1 : 0));
  } else {
    const perAgent = requireInt(options.perAgent, 'partitionIid: options.perAgent', 1, Math.floor(n / numAgents));
    sizes = new Array<number>(numAgents).fill(perAgent);
  }
  const order = new SeededRng(seed, 'partition-iid').permutation(n);
  const lists: Uint32Array[] = [];
  let start = 0;
  for (const size of sizes) {
    lists.push(order.subarray(start, start + size));
    start += size;
  }
  return makePartition('iid', lists, n);
}
