/** Summaries of how non-IID a partition is, for logs, reports and tests. */
import type { LocalDataset } from '../dataset.js';
import type { Partition } from './partition.js';

export interface PartitionStats {
  /** Examples per agent. */
  sizes: number[];
  /** counts[k][c]: examples of class c held by agent k. */
  counts: number[][];
  /**
   * Per agent, the total-variation distance between its label distribution and the whole dataset's:
   * 0 = same mix as everyone, →1 = classes nobody else has. NaN for an empty agent.
   */
  labelTv: number[];
  /** Mean of labelTv over non-empty agents: the skew statistic (≈0 for IID, large for small α). */
  meanLabelTv: number;
  /** Mean number of classes present per non-empty agent. */
  meanClassesPresent: number;
}

export function partitionStats(dataset: LocalDataset, partition: Partition): PartitionStats {
  if (partition.datasetSize !== dataset.size) {
    throw new RangeError(
      `partitionStats: partition is for ${partition.datasetSize} examples, dataset ${dataset.name} has ${dataset.size}`,
    );
  }
  const C = dataset.numClasses;
  const global = dataset.classCounts().map((c) => c / Math.max(1, dataset.size));
  const counts = partition.agents.map((list) => {
    const row = new Array<number>(C).fill(0);
    for (const i of list) row[dataset.label(i)]! += 1;
    return row;
  });
  const labelTv = counts.map((row, k) => {
    const size = partition.agents[k]!.length;
    if (size === 0) return NaN;
    let tv = 0;
    for (let c = 0; c < C; c++) tv += Math.abs(row[c]! / size - global[c]!);
    return tv / 2;
  });
  const nonEmpty = counts.filter((_, k) => partition.agents[k]!.length > 0);
  const meanLabelTv = labelTv.filter((v) => !Number.isNaN(v)).reduce((a, v) => a + v, 0) / Math.max(1, nonEmpty.length);
  const present = nonEmpty.reduce((a, row) => a + row.filter((v) => v > 0).length, 0);
  const meanClassesPresent = present / Math.max(1, nonEmpty.length);
  return { sizes: partition.agents.map((l) => l.length), counts, labelTv, meanLabelTv, meanClassesPresent };
}
