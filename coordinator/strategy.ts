/**
 * How a round is configured and how its results become an update, in the style of Flower's Strategy: the round
 * loop (round-loop.ts) asks configureRound which agents evaluate which seeds, and aggregate what the answers
 * add up to. The default MezoStrategy samples agents (uniformly or by capability), assigns seeds (one shared
 * set, distinct per agent, or from a K-seed pool), aggregates each seed's projected gradients robustly (weighted
 * mean, trimmed mean or median, after clipping) and turns them into coefficients −lr·aggregate/seeds with the
 * learning-rate schedules of the local trainer. Every choice is a pure function of (job seed, round, attempt).
 */
import { z } from 'zod';
import { SeededRng } from '../shared/data/rng.js';
import { clipValue } from '../shared/optim/clip.js';
import { seedsWithHighWord, vPeriodSchema } from '../shared/optim/perturbation.js';
import { learningRateAt, lrScheduleWithDefault, type LrSchedule } from '../shared/optim/lr-schedule.js';
import type { Capabilities, TaskConfig } from '../shared/transport/index.js';

/** What configureTask returns, here too so that a strategy's author need not import the transport. */
export type { TaskConfig, TaskConfigValue } from '../shared/transport/index.js';

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
  /** Absent in private mode (record-level DP): the agent released only g. */
  lossPlus?: readonly number[];
  lossMinus?: readonly number[];
  sampleCount: number;
}

export interface AggregatedUpdate {
  lr: number;
  /** Weight-decay multiplier for the log header's decay ranges (1: none). */
  decay: number;
  terms: Array<{ seed: bigint; coeff: number }>;
  /** Mean of (L₊ + L₋)/2 over the results, for progress reports. */
  trainLoss: number;
  /**
   * The strategy's own figures for the round (finite numbers by name), carried to round listeners in
   * RoundReport.metrics; never logged in the update log, so they do not change the model.
   */
  metrics?: Readonly<Record<string, number>>;
}

/** An agent asked in an attempt whose answer is not among the results handed to aggregate, and why. */
export interface RoundFailure {
  agentId: string;
  /**
   * 'dropped': its session closed, or its task (or, in a secure round, a phase's message) could not be sent;
   * 'declined': it declined the task (busy, or over its memory budget); 'unanswered': no valid answer when the
   * attempt closed (the deadline passed, the quorum was reached first, or its answer was rejected; in a secure
   * round, its keys, shares or masked input did not arrive in their phase or were refused).
   */
  reason: 'dropped' | 'declined' | 'unanswered';
}

export interface Strategy {
  /**
   * Agents a round asks for: the round loop waits for this many and, without options.quorum, needs all of their
   * answers. Unset: options.strategy.agentsPerRound (which also builds the default MezoStrategy).
   */
  readonly agentsPerRound?: number;
  /** Which of the connected agents evaluate which seeds. Returns [] when the round cannot be configured. */
  configureRound(context: RoundContext, agents: readonly AgentView[]): Assignment[];
  /**
   * The strategy's own settings for one agent's task in this attempt (Flower's `config`), asked once per agent
   * configureRound assigned, after it: strings, finite numbers and booleans by key, carried in Task.config to
   * the agent, where its evaluation middleware reads them (context.task.config). At most 64 keys of a letter
   * then up to 63 of A-Z a-z 0-9 _ . -, strings of at most 1024 characters; anything else fails the job before
   * the attempt's tasks are sent. Absent, or undefined or {} for an agent: its task carries no config.
   */
  configureTask?(context: RoundContext, agentId: string): TaskConfig | undefined;
  /**
   * The update the results add up to; null when nothing usable came back. `failures` names the agents asked in
   * this attempt whose answers are not in `results`. In a secure-aggregation round `results` is the unmasked sum
   * handed over as answers of its own (secure-aggregation.ts), and `failures` the asked agents whose masked input
   * is not in that sum.
   */
  aggregate(context: RoundContext, results: readonly AgentResult[], failures: readonly RoundFailure[]): AggregatedUpdate | null;
  /**
   * Asked before every attempt: true ends the job cleanly before it (nothing more is appended, and the agents
   * hear that the job ended, reason 'stopped'), e.g. once a privacy budget would be exceeded. Absent: the job
   * runs its options.rounds.
   */
  shouldEndJob?(next: RoundContext): boolean;
}

export const momentumSchema = z
  .strictObject({
    beta: z.number().gt(0).lt(1),
    window: z.number().int().min(1).max(64).default(4),
    /**
     * Scale the fresh terms by 1 / Σ beta^a over the weights a direction will receive, so each direction's
     * total step is what it is without momentum (true), or leave them whole: heavy ball, whose steady-state
     * step is 1/(1 − beta) times larger (false).
     */
    normalize: z.boolean().default(true),
  });

export const lossGuardSchema = z
  .strictObject({
    threshold: z.number().positive().finite().default(4),
    warmup: z.number().int().min(1).max(1_000_000).default(20),
    /** Weight of the newest round in the running mean and variance. */
    smoothing: z.number().gt(0).lt(1).default(0.05),
  });

export const plateauSchema = z
  .strictObject({
    factor: z.number().gt(0).lt(1).default(0.5),
    patience: z.number().int().min(1).max(1_000_000).default(100),
    minDelta: z.number().nonnegative().lt(1).default(0.01),
    minScale: z.number().gt(0).max(1).default(0.05),
    smoothing: z.number().gt(0).lt(1).default(0.05),
  });

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
    /**
     * Rounds over which the seeds keep their high 32 bits (drawn per window, low words distinct in a round). With
     * 'lowrank' noise V depends on the high word only, so the window's updates share one subspace (LOZO's lazy
     * V); 1 draws every seed afresh.
     */
    vPeriod: vPeriodSchema.default(1),
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
    /**
     * Seed-space momentum (off when absent): a round's entry also re-applies the fresh terms of the previous
     * `window` rounds scaled by beta^age (heavy ball truncated to a window), so the log keeps plain (seed,
     * coefficient) terms and replay is unchanged. In pool mode the history collapses onto the pool's K seeds:
     * an untruncated velocity of K coefficients, and the window is ignored.
     */
    momentum: momentumSchema.optional(),
    /**
     * Loss-jump guard (off when absent): a round whose mean loss (measured at the weights the previous round
     * produced) lies more than `threshold` running standard deviations above the running mean, after `warmup`
     * rounds, is taken as the sign of a harmful update: its entry undoes the previous round's terms instead of
     * adding new ones.
     */
    lossGuard: lossGuardSchema.optional(),
    /**
     * Reduce-on-plateau (off when absent): the rate is multiplied by `factor` (down to `minScale` of the schedule)
     * whenever the smoothed training loss has not improved by `minDelta` (relative) for `patience` rounds. It reads
     * the rounds' own losses, so it is a function of the answers alone and the same on every rerun.
     */
    plateau: plateauSchema.optional(),
  })
  .refine((s) => s.seedMode !== 'pool' || s.seedsPerAgent <= s.poolSize, {
    path: ['seedsPerAgent'],
    message: 'must not exceed poolSize in pool mode',
  })
  .refine((s) => s.vPeriod === 1 || s.seedMode !== 'pool', {
    path: ['vPeriod'],
    message: "must be 1 in pool mode (the pool's seeds are fixed for the job)",
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

type Term = { seed: bigint; coeff: number };

/**
 * What the optimiser remembers of one aggregated round: a pure function of the previous round's state and the
 * round's answers. A retried round replaces its own state, so only the attempt that committed is remembered.
 */
export interface OptimiserState {
  round: number;
  /** The round's own terms (−lr·aggregate/seeds); empty for a round the loss guard turned into an undo. */
  fresh: Term[];
  /** Every term of the round's entry. */
  applied: Term[];
  /** The round undid the previous one (loss guard). */
  undo: boolean;
  /** Pool-mode momentum: the velocity over the pool's seeds after this round. */
  velocity: Map<bigint, number> | undefined;
  /** Loss guard: running mean and variance of the rounds' losses, and how many went in. */
  lossMean: number;
  lossVar: number;
  lossCount: number;
  /** Reduce-on-plateau: smoothed loss, the best of it, the round it was reached or the rate last cut, the rate's scale. */
  smoothed: number;
  best: number;
  since: number;
  lrScale: number;
}

/** Adds terms into a map by seed, keeping first-seen order (a seed appears once in an entry). */
function accumulate(into: Map<bigint, number>, terms: readonly Term[], scale: number): void {
  for (const { seed, coeff } of terms) into.set(seed, (into.get(seed) ?? 0) + scale * coeff);
}

export class MezoStrategy implements Strategy {
  readonly config: StrategyConfig;
  private readonly schedule: LrSchedule;
  private pool: bigint[] | undefined;
  /** The optimiser states of the last rounds, oldest first (as many as momentum's window needs). */
  private history: OptimiserState[] = [];

  constructor(config: StrategyConfigInput = {}) {
    const parsed = strategyConfigSchema.safeParse(config);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RangeError(`strategy: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    this.config = parsed.data;
    this.schedule = parsed.data.schedule;
  }

  get agentsPerRound(): number {
    return this.config.agentsPerRound;
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

  /**
   * Draws a round's fresh seeds: 64 random bits each, or with vPeriod ν > 1 a high word drawn once per window of
   * ν rounds (every attempt of the window's rounds shares it) and low words distinct within the round.
   */
  private seedDrawer(context: RoundContext, rng: SeededRng): () => bigint {
    const { vPeriod } = this.config;
    if (vPeriod <= 1) return () => draw64(rng);
    const high = new SeededRng(this.config.seed, 'coordinator-v-window', Math.floor(context.round / vPeriod)).nextUint32();
    const taken = new Set<bigint>();
    return () => seedsWithHighWord(rng, high, 1, taken)[0]!;
  }

  configureRound(context: RoundContext, agents: readonly AgentView[]): Assignment[] {
    const chosen = this.sample(context, agents);
    const rng = new SeededRng(this.config.seed, 'coordinator-seeds', context.round, context.attempt);
    const draw = this.seedDrawer(context, rng);
    const { seedMode, seedsPerAgent, poolSize } = this.config;
    switch (seedMode) {
      case 'shared': {
        const seeds = Array.from({ length: seedsPerAgent }, draw);
        return chosen.map((a) => ({ agentId: a.id, seeds: [...seeds] }));
      }
      case 'distinct':
        return chosen.map((a) => ({ agentId: a.id, seeds: Array.from({ length: seedsPerAgent }, draw) }));
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
        if (result.lossPlus && result.lossMinus) {
          lossSum += (result.lossPlus[k]! + result.lossMinus[k]!) / 2;
          lossCount++;
        }
      });
    }
    if (perSeed.size === 0) return null;
    const trainLoss = lossSum / lossCount;
    // A retried round replaces whatever its earlier attempt left; the state before it is the last committed round's.
    this.history = this.history.filter((h) => h.round < context.round);
    const prior = this.history.at(-1);
    const state = this.nextState(context.round, prior, trainLoss);
    const lr = learningRateAt(this.schedule, context.round) * state.lrScale;
    const decay = Math.fround(1 - lr * this.config.weightDecay);
    if (state.undo) {
      // The previous round's entry, negated: the weights go back to where they were before it.
      state.applied = prior!.applied.map(({ seed, coeff }) => ({ seed, coeff: -coeff }));
    } else {
      state.fresh = [...perSeed].map(([seed, { values, weights }]) => ({
        seed,
        coeff: (-lr * this.combine(values, weights)) / perSeed.size,
      }));
      state.applied = this.withMomentum(context.round, state, prior);
    }
    this.history.push(state);
    const keep = (this.config.momentum?.window ?? 0) + 1;
    if (this.history.length > keep) this.history.splice(0, this.history.length - keep);
    return { lr, decay, terms: state.applied, trainLoss };
  }

  /** The optimiser state after the last aggregated round (for inspection and tests). */
  optimiserState(): Readonly<OptimiserState> | undefined {
    return this.history.at(-1);
  }

  /** The loss guard's and the plateau rule's verdict on a round with this loss, given the previous round's state. */
  private nextState(round: number, prior: OptimiserState | undefined, loss: number): OptimiserState {
    const state: OptimiserState = {
      round,
      fresh: [],
      applied: [],
      undo: false,
      velocity: undefined,
      lossMean: prior?.lossMean ?? 0,
      lossVar: prior?.lossVar ?? 0,
      lossCount: prior?.lossCount ?? 0,
      smoothed: prior?.smoothed ?? Number.NaN,
      best: prior?.best ?? Number.POSITIVE_INFINITY,
      since: prior?.since ?? round,
      lrScale: prior?.lrScale ?? 1,
    };
    const guard = this.config.lossGuard;
    if (guard && Number.isFinite(loss)) {
      const outlier =
        state.lossCount >= guard.warmup && loss > state.lossMean + guard.threshold * Math.sqrt(state.lossVar);
      // Never undo an undo (that would re-apply the update judged harmful) nor an empty history.
      if (outlier && prior && !prior.undo && prior.applied.length > 0) {
        state.undo = true;
        return state;
      }
      if (!outlier) {
        // Exponentially weighted mean and variance (the first rounds: plain running moments).
        const a = Math.max(guard.smoothing, 1 / (state.lossCount + 1));
        const delta = loss - state.lossMean;
        state.lossMean += a * delta;
        state.lossVar = (1 - a) * (state.lossVar + a * delta * delta);
        state.lossCount++;
      }
    }
    const plateau = this.config.plateau;
    if (plateau && Number.isFinite(loss)) {
      state.smoothed = Number.isNaN(state.smoothed) ? loss : state.smoothed + plateau.smoothing * (loss - state.smoothed);
      if (state.smoothed < state.best * (1 - plateau.minDelta)) {
        state.best = state.smoothed;
        state.since = round;
      } else if (round - state.since >= plateau.patience) {
        state.lrScale = Math.max(plateau.minScale, state.lrScale * plateau.factor);
        state.since = round;
        state.best = state.smoothed;
      }
    }
    return state;
  }

  /** The entry's terms: the round's fresh terms plus the momentum the previous rounds carry. */
  private withMomentum(round: number, state: OptimiserState, prior: OptimiserState | undefined): Term[] {
    const momentum = this.config.momentum;
    if (!momentum) return state.fresh;
    const { beta, window, normalize } = momentum;
    if (this.config.seedMode === 'pool') {
      // v_t = beta·v_{t−1} + (1 − beta)·fresh_t (or + fresh_t unnormalised), over the pool's seeds.
      const velocity = new Map<bigint, number>();
      if (prior?.velocity && !prior.undo) accumulate(velocity, [...prior.velocity].map(([seed, coeff]) => ({ seed, coeff })), beta);
      accumulate(velocity, state.fresh, normalize ? 1 - beta : 1);
      state.velocity = velocity;
      return [...velocity].map(([seed, coeff]) => ({ seed, coeff })).filter((t) => t.coeff !== 0);
    }
    // Each direction receives the weights beta^0 … beta^window over window + 1 rounds; normalised, they sum to 1.
    const scale = normalize ? (1 - beta) / (1 - beta ** (window + 1)) : 1;
    const terms = new Map<bigint, number>();
    accumulate(terms, state.fresh, scale);
    // A round undone by the guard, and the round it undid, no longer carry momentum.
    const cancelled = new Set<number>();
    for (const h of this.history) if (h.undo) cancelled.add(h.round - 1);
    for (const h of this.history) {
      const age = round - h.round;
      if (age < 1 || age > window || h.undo || cancelled.has(h.round)) continue;
      accumulate(terms, h.fresh, scale * beta ** age);
    }
    return [...terms].map(([seed, coeff]) => ({ seed, coeff }));
  }
}
