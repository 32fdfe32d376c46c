/**
 * The default task's data for a simulated fleet: the device pool of clean digits split across N virtual agents
 * by a partitioner (IID, Dirichlet label skew, label shards), each agent's share distorted by its own device
 * shift (shared/model/default-model.ts). A share is built when the agent first needs it and kept in a bounded
 * cache, so ten thousand agents cost only the indices of their shares plus the shares in use.
 *
 * The pool holds 4,500 digits. When the fleet needs more (agents × minPerAgent), the pool is repeated: the same
 * digit may then sit on several devices, each seeing it through its own distortion, as the same scene would
 * through different cameras.
 */
import { LocalDataset } from '../shared/data/index.js';
import {
  drawAgentShifts,
  partitionDirichlet,
  partitionIid,
  partitionLabelShards,
  shiftExamples,
  type AgentShift,
  type Partition,
} from '../shared/data/partition/index.js';
import { defaultSplit, deviceShiftOptions, shiftedTestSet } from '../shared/model/index.js';
import type { Seed } from '../shared/noise/index.js';

export type Partitioner = 'iid' | 'dirichlet' | 'label-shards';

export interface FleetDataOptions {
  agents: number;
  partitioner: Partitioner;
  /** Dirichlet concentration (smaller: more skewed). */
  alpha: number;
  /** Label shards per agent. */
  shardsPerAgent: number;
  /** Repeat the pool until every agent can get at least this many digits. */
  minPerAgent: number;
  seed: Seed;
  /** Shares kept built at once (least recently used dropped first). */
  cacheShares: number;
}

export interface FleetDataSummary {
  agents: number;
  partitioner: Partitioner;
  /** How many times the device pool was repeated to reach agents × minPerAgent digits. */
  poolRepeats: number;
  examplesPerAgent: { min: number; median: number; max: number };
}

export class FleetData {
  readonly shiftedTest: LocalDataset<Float32Array>;
  readonly summary: FleetDataSummary;
  private readonly pool: LocalDataset<Float32Array>;
  private readonly partition: Partition;
  private readonly shifts: AgentShift[];
  private readonly seed: Seed;
  private readonly cache = new Map<number, LocalDataset<Float32Array>>();
  private readonly cacheShares: number;
  private built = 0;

  constructor(options: FleetDataOptions) {
    const split = defaultSplit();
    const base = split.devicePool;
    const repeats = Math.max(1, Math.ceil((options.agents * options.minPerAgent) / base.size));
    const positions = new Uint32Array(base.size * repeats);
    for (let i = 0; i < positions.length; i++) positions[i] = i % base.size;
    this.pool = repeats === 1 ? base : base.subset(positions, `${base.name}×${repeats}`);
    const common = { numAgents: options.agents, seed: options.seed };
    switch (options.partitioner) {
      case 'iid':
        this.partition = partitionIid(this.pool, common);
        break;
      case 'dirichlet':
        // By agent: every device gets an equal share with its own class mixture, so none is empty at any N.
        this.partition = partitionDirichlet(this.pool, { ...common, alpha: options.alpha, mode: 'by-agent' });
        break;
      case 'label-shards':
        this.partition = partitionLabelShards(this.pool, { ...common, shardsPerAgent: options.shardsPerAgent });
        break;
    }
    this.shifts = drawAgentShifts(options.agents, deviceShiftOptions(options.seed));
    this.seed = options.seed;
    this.cacheShares = Math.max(1, options.cacheShares);
    this.shiftedTest = shiftedTestSet(split.test).dataset;
    const sizes = this.partition.agents.map((a) => a.length).sort((a, b) => a - b);
    this.summary = {
      agents: options.agents,
      partitioner: options.partitioner,
      poolRepeats: repeats,
      examplesPerAgent: { min: sizes[0] ?? 0, median: sizes[sizes.length >> 1] ?? 0, max: sizes.at(-1) ?? 0 },
    };
  }

  /** Agent k's distorted share; built on first use, rebuilt identically after eviction. */
  share(k: number): LocalDataset<Float32Array> {
    const cached = this.cache.get(k);
    if (cached) {
      // Refresh its place in the LRU order.
      this.cache.delete(k);
      this.cache.set(k, cached);
      return cached;
    }
    const options = deviceShiftOptions(this.seed);
    const share = shiftExamples(this.pool, this.partition.agents[k]!, this.shifts[k]!, this.seed, options.imageShape!, [0, 1], k);
    this.built++;
    this.cache.set(k, share);
    if (this.cache.size > this.cacheShares) this.cache.delete(this.cache.keys().next().value!);
    return share;
  }

  /** Shares built so far (rebuilds after eviction included). */
  get sharesBuilt(): number {
    return this.built;
  }
}
