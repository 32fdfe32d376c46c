/**
 * How a round is configured and how its results become an update, in the style of Flower's Strategy: the round
 * loop (coordinator.ts) asks configureRound which agents evaluate which seeds, and aggregate what the answers
 * add up to. The default MezoStrategy samples agents (uniformly or by capability), assigns seeds (one shared
 * set, distinct per agent, or from a K-seed pool), aggregates each seed's projected gradients robustly (weighted
 * mean, trimmed mean or median, after clipping) and turns them into coefficients −lr·aggregate/seeds with the
 * learning-rate schedules of the local trainer. Every choice is a pure function of (job seed, round, attempt).
 */
import { z } from 'zod';
import { SeededRng } from '../shared/data/rng.js';
import { clipValue } from '../shared/optim/clip.js';
import { learningRateAt, lrScheduleWithDefault, type LrSchedule } from '../shared/optim/lr-schedule.js';
import type { Capabilities } from '../shared/transport/index.js';

export interface AgentView {
  id: string;
  capabilities: Capabilities;
}

export interface RoundContext {
  round: number;
  attempt: number;
  /** The log version the round's tasks evaluate at. */
  version: number;
}

export interface Assignment {
  agentId: string;
  seeds: bigint[];
}

/** One agent's validated answer. */
export interface AgentResult {
  agentId: string;
  seeds: readonly bigint[];
  g: readonly number[];
  lossPlus: readonly number[];
  lossMinus: readonly number[];
  sampleCount: number;
}

export interface AggregatedUpdate {
  lr: number;
  /** Weight-decay multiplier for the log header's decay ranges (1: none). */
  decay: number;
  terms: Array<{ seed: bigint; coeff: number }>;
  /** Mean of (L₊ + L₋)/2 over the results, for progress reports. */
  trainLoss: number;
}

export interface Strategy {
  /** Which of the connected agents evaluate which seeds. Returns [] when the round cannot be configured. */
  configureRound(context: RoundContext, agents: readonly AgentView[]): Assignment[];
  /** The update the results add up to; null when nothing usable came back. */
  aggregate(context: RoundContext, results: readonly AgentResult[]): AggregatedUpdate | null;
}

export const strategyConfigSchema = z
  .strictObject({
    /** Agents asked per round (m); fewer when fewer are connected. */
    agentsPerRound: z.number().int().min(1).max(100_000).default(4),
    /**
     * 'uniform': every connected agent equally likely; 'capability': weighted by threads (or cores when the agent
     * caps none), among agents whose memory (their budget when they give one) is at least minMemoryBytes — the
     * task's need, e.g. `mezo plan`'s MeZO peak at the job's batch size. Both skip agents that report themselves busy.
     */
    sampling: z.enum(['uniform', 'capability']).default('uniform'),
    minMemoryBytes: z.number().int().nonnegative().default(0),
    /**
     * 'shared': every agent the same seeds; 'distinct': each its own; 'pool': seedsPerAgent per agent from one
     * pool of poolSize seeds fixed for the whole job (so the log's history collapses to poolSize terms: compaction).
     */
    seedMode: z.enum(['shared', 'distinct', 'pool']).default('distinct'),
    seedsPerAgent: z.number().int().min(1).max(4096).default(1),
    /** K, the number of seeds in the job's pool (pool mode). */
    poolSize: z.number().int().min(1).max(65_536).default(8),
    aggregation: z.enum(['mean', 'trimmed-mean', 'median']).default('mean'),
    /** Fraction of values cut from each end by the trimmed mean. */
    trimFraction: z.number().min(0).lt(0.5).default(0.1),
    /** Clip each projected gradient to [−clip, clip] before aggregating. */
    clip: z.number().positive().finite().optional(),
    schedule: lrScheduleWithDefault(1e-3),
    /** Decoupled weight decay (the log header must then name decay ranges). */
    weightDecay: z.number().nonnegative().finite().default(0),
    /** Seeds every random choice of the strategy. */
    seed: z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^[0-9]{1,20}$/)]).default(0),
  })
  .refine((s) => s.seedMode !== 'pool' || s.seedsPerAgent <= s.poolSize, {
    path: ['seedsPerAgent'],
    message: 'must not exceed poolSize in pool mode',
  });
export type StrategyConfig = z.output<typeof strategyConfigSchema>;
export type StrategyConfigInput = z.input<typeof strategyConfigSchema>;

// ---- aggregation primitives ----

export { clipValue };

/** Σ wᵢxᵢ / Σ wᵢ (weights must be positive). */
export function weightedMean(values: readonly number[], weights: readonly number[]): number {
  if (values.length === 0) throw new RangeError('weightedMean: no values');
  if (weights.length !== values.length) throw new RangeError('weightedMean: one weight per value');
  let sum = 0;
  let total = 0;
  values.forEach((x, i) => {
    const w = weights[i]!;
    if (!(w > 0)) throw new RangeError(`weightedMean: weights[${i}] must be positive, got ${w}`);
    sum += w * x;
    total += w;
  });
  return sum / total;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Mean after dropping ⌊fraction·n⌋ values from each end. */
export function trimmedMean(values: readonly number[], fraction: number): number {
  if (values.length === 0) throw new RangeError('trimmedMean: no values');
  if (!(fraction >= 0 && fraction < 0.5)) throw new RangeError(`trimmedMean: fraction must be in [0, 0.5), got ${fraction}`);
  const sorted = [...values].sort((a, b) => a - b);
  const cut = Math.floor(fraction * sorted.length);
  const kept = sorted.slice(cut, sorted.length - cut);
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

// ---- the default strategy ----

/** The memory an agent offers a task: its budget when it set one, else all it has. */
export function usableMemory(capabilities: Capabilities): number {
  return capabilities.memoryBudgetBytes || capabilities.memoryBytes;
}

function draw64(rng: SeededRng): bigint {
  return BigInt(rng.nextUint32()) | (BigInt(rng.nextUint32()) << 32n);
}

export class MezoStrategy implements Strategy {
  readonly config: StrategyConfig;
  private readonly schedule: LrSchedule;
  private pool: bigint[] | undefined;

  constructor(config: StrategyConfigInput = {}) {
    const parsed = strategyConfigSchema.safeParse(config);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RangeError(`strategy: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    this.config = parsed.data;
    this.schedule = parsed.data.schedule;
  }

  /** The job's K-seed pool: distinct seeds, a pure function of the strategy seed alone (the same every round). */
  seedPool(): readonly bigint[] {
    if (!this.pool) {
      const rng = new SeededRng(this.config.seed, 'coordinator-pool');
      const seeds = new Set<bigint>();
      while (seeds.size < this.config.poolSize) seeds.add(draw64(rng));
      this.pool = [...seeds];
    }
    return this.pool;
  }

  /** m agents without replacement among those not busy: uniformly, or with probability ∝ threads among those with enough memory. */
  sample(context: RoundContext, agents: readonly AgentView[]): AgentView[] {
    const rng = new SeededRng(this.config.seed, 'coordinator-sample', context.round, context.attempt);
    // Sort first so the choice depends on who is connected, not on the order they connected in.
    let pool = [...agents].filter((a) => !a.capabilities.busy).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.config.sampling === 'capability') pool = pool.filter((a) => usableMemory(a.capabilities) >= this.config.minMemoryBytes);
    const m = Math.min(this.config.agentsPerRound, pool.length);
    const chosen: AgentView[] = [];
    if (this.config.sampling === 'uniform') {
      const order = rng.permutation(pool.length);
      for (let i = 0; i < m; i++) chosen.push(pool[order[i]!]!);
      return chosen;
    }
    const weights = pool.map((a) => Math.max(1, a.capabilities.threads || a.capabilities.cores));
    for (let i = 0; i < m; i++) {
      const total = weights.reduce((a, b) => a + b, 0);
      let x = rng.nextFloat() * total;
      let k = 0;
      while (k < pool.length - 1 && x >= weights[k]!) x -= weights[k++]!;
      chosen.push(pool[k]!);
      pool.splice(k, 1);
      weights.splice(k, 1);
    }
    return chosen;
  }

  configureRound(context: RoundContext, agents: readonly AgentView[]): Assignment[] {
    const chosen = this.sample(context, agents);
    const rng = new SeededRng(this.config.seed, 'coordinator-seeds', context.round, context.attempt);
    const { seedMode, seedsPerAgent, poolSize } = this.config;
    switch (seedMode) {
      case 'shared': {
        const seeds = Array.from({ length: seedsPerAgent }, () => draw64(rng));
        return chosen.map((a) => ({ agentId: a.id, seeds: [...seeds] }));
      }
      case 'distinct':
        return chosen.map((a) => ({ agentId: a.id, seeds: Array.from({ length: seedsPerAgent }, () => draw64(rng)) }));
      case 'pool': {
        const pool = this.seedPool();
        // Round-robin through the pool from a start drawn per round and attempt, so every seed is evaluated by
        // about the same number of agents and a round smaller than the pool still reaches all of it over time.
        const start = rng.nextBelow(poolSize);
        return chosen.map((a, i) => ({
          agentId: a.id,
          seeds: Array.from({ length: seedsPerAgent }, (_, j) => pool[(start + i * seedsPerAgent + j) % poolSize]!),
        }));
      }
    }
  }

  /** The aggregate of one seed's projected gradients (already clipped), weighted by sample counts for the mean. */
  combine(values: readonly number[], weights: readonly number[]): number {
    switch (this.config.aggregation) {
      case 'mean':
        return weightedMean(values, weights);
      case 'trimmed-mean':
        return trimmedMean(values, this.config.trimFraction);
      case 'median':
        return median(values);
    }
  }

  aggregate(context: RoundContext, results: readonly AgentResult[]): AggregatedUpdate | null {
    // Order by agent id so the update does not depend on the order answers arrived in.
    const ordered = [...results].sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
    const perSeed = new Map<bigint, { values: number[]; weights: number[] }>();
    let lossSum = 0;
    let lossCount = 0;
    for (const result of ordered) {
      result.seeds.forEach((seed, k) => {
        const slot = perSeed.get(seed) ?? { values: [], weights: [] };
        slot.values.push(clipValue(result.g[k]!, this.config.clip));
        slot.weights.push(result.sampleCount);
        perSeed.set(seed, slot);
        lossSum += (result.lossPlus[k]! + result.lossMinus[k]!) / 2;
        lossCount++;
      });
    }
    if (perSeed.size === 0) return null;
    const lr = learningRateAt(this.schedule, context.round);
    const decay = Math.fround(1 - lr * this.config.weightDecay);
    const terms = [...perSeed].map(([seed, { values, weights }]) => ({
      seed,
      coeff: (-lr * this.combine(values, weights)) / perSeed.size,
    }));
    return { lr, decay, terms, trainLoss: lossSum / lossCount };
  }
}
