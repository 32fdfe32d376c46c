/**
 * What every partitioner returns: for each agent, the positions (in the partitioned dataset) of its examples.
 * The contract all of them keep: an example goes to at most one agent, each list is sorted ascending, and
 * the same (dataset, options, seed) always gives the same lists, so a coordinator can hand out partitions as
 * (scheme, options, seed) and every device recomputes its own share.
 */
import { seedToKey } from '../../noise/engine.js';
import type { FeatureArray, LocalDataset } from '../dataset.js';
import { describe, requireInt } from '../describe.js';
import type { Seed } from '../rng.js';

export interface Partition {
  /** 'iid', 'dirichlet' or 'label-shards'. */
  readonly scheme: string;
  /** Per agent, ascending dataset positions. */
  readonly agents: readonly Uint32Array[];
  /** Size of the partitioned dataset. */
  readonly datasetSize: number;
  /** Examples given to no agent (IID with perAgent, for instance); 0 for complete schemes. */
  readonly unassigned: number;
  /** Agents that received no example (only possible where the scheme's options allow it). */
  readonly emptyAgents: readonly number[];
  /** Draws made before the accepted one (Dirichlet re-draws; 1 elsewhere). */
  readonly attempts: number;
}

export interface BasePartitionOptions {
  numAgents: number;
  seed: Seed;
}

/** Checks the options every partitioner shares, with messages naming `method`. */
export function checkBaseOptions(options: unknown, method: string): { numAgents: number; seed: Seed } {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${method}: options must be an object with numAgents and seed, got ${describe(options)}`);
  }
  const { numAgents, seed } = options as Partial<BasePartitionOptions>;
  requireInt(numAgents, `${method}: options.numAgents`, 1, 1 << 20);
  if (seed === undefined) throw new TypeError(`${method}: options.seed is required`);
  seedToKey(seed, `${method}: options.seed`);
  return { numAgents: numAgents!, seed };
}

/** Builds a Partition from per-agent position lists (sorting each). */
export function makePartition(
  scheme: string,
  lists: ArrayLike<number>[],
  datasetSize: number,
  attempts = 1,
): Partition {
  let assigned = 0;
  const emptyAgents: number[] = [];
  const agents = lists.map((list, k) => {
    const sorted = Uint32Array.from(list).sort();
    assigned += sorted.length;
    if (sorted.length === 0) emptyAgents.push(k);
    return sorted;
  });
  return Object.freeze({
    scheme,
    agents: Object.freeze(agents),
    datasetSize,
    unassigned: datasetSize - assigned,
    emptyAgents: Object.freeze(emptyAgents),
    attempts,
  });
}

/**
 * Throws unless `partition` is well formed for a dataset of `datasetSize` examples: every position in range
 * and no example given to two agents (or twice to one). For partitions received over the wire.
 */
export function checkPartition(partition: Partition, datasetSize: number): void {
  requireInt(datasetSize, 'checkPartition: datasetSize', 0);
  if (partition === null || typeof partition !== 'object' || !Array.isArray(partition.agents)) {
    throw new TypeError(`checkPartition: partition must have an agents array, got ${describe(partition)}`);
  }
  const owner = new Int32Array(datasetSize).fill(-1);
  partition.agents.forEach((list, k) => {
    for (let j = 0; j < list.length; j++) {
      const i = list[j]!;
      if (!Number.isInteger(i) || i < 0 || i >= datasetSize) {
        throw new RangeError(`checkPartition: agent ${k} position ${j} is ${describe(i)}, outside [0, ${datasetSize})`);
      }
      if (owner[i] !== -1) {
        throw new RangeError(`checkPartition: example ${i} is assigned to agent ${owner[i]} and agent ${k}`);
      }
      owner[i] = k;
    }
  });
}

/** Each agent's examples as a view of `dataset` (no copy), named "<dataset>/agent-k". */
export function agentDatasets<F extends FeatureArray>(
  dataset: LocalDataset<F>,
  partition: Partition,
): LocalDataset<F>[] {
  if (partition.datasetSize !== dataset.size) {
    throw new RangeError(
      `agentDatasets: partition is for ${partition.datasetSize} examples, dataset ${dataset.name} has ${dataset.size}`,
    );
  }
  return partition.agents.map((list, k) => dataset.subset(list, `${dataset.name}/agent-${k}`));
}

/** Positions of each class, ascending: byClass[c] lists the examples labelled c. */
export function positionsByClass(dataset: LocalDataset): Uint32Array[] {
  const counts = dataset.classCounts();
  const out = counts.map((n) => new Uint32Array(n));
  const fill = new Array<number>(counts.length).fill(0);
  for (let i = 0; i < dataset.size; i++) {
    const y = dataset.label(i);
    out[y]![fill[y]!++] = i;
  }
  return out;
}
