/**
 * Central agent-level differential privacy as a Strategy wrapper (in the manner of Flower's
 * DifferentialPrivacyServerSideFixedClipping): the coordinator, trusted to see each agent's scalars, clips each
 * agent's contribution, sums per seed, adds Gaussian noise from a cryptographic generator and releases only the
 * noised coefficients, which are all the log records — so replay stays exact and the model is post-processing
 * of the release. An RDP accountant (shared/privacy) tracks ε over rounds at the sampling rate each round really
 * had, and the wrapper refuses to release a round that would exceed the budget.
 *
 * The mechanism per round: agent i's values g_i over its assigned seeds are clipped to L2 norm C; for each seed
 * the release is v = Σ_i g_i[seed] / a + N(0, (σC/a)²), where a is the number of agents the round assigned that
 * seed (every agent in 'shared' mode, one in 'distinct'), fixed before any answer arrives. Adding or removing one
 * agent moves the vector of v by at most C/a in L2, so this is the Gaussian mechanism with noise multiplier σ.
 * Every assigned seed gets a term, answered or not, so which terms appear does not depend on who answered. The
 * mean is unweighted: sample counts are the agents' and would change the sensitivity.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RdpAccountant, noiseMultiplierFor } from '../shared/privacy/rdp-accountant.js';
import type { Coordinator } from './coordinator.js';
import type { AgentResult, AgentView, AggregatedUpdate, Assignment, MezoStrategy, RoundContext, Strategy, TaskConfig } from './strategy.js';

export const centralDpConfigSchema = z
  .strictObject({
    /** C: each agent's projected gradients over its seeds are clipped to this L2 norm. */
    clip: z.number().positive().finite(),
    /** σ: noise standard deviation in units of the sensitivity. Derived from epsilon when absent. */
    noiseMultiplier: z.number().positive().finite().optional(),
    /** The (ε, δ) budget: no round is released that would exceed it. Absent: account without a limit. */
    epsilon: z.number().positive().finite().optional(),
    delta: z.number().gt(0).lt(1).default(1e-5),
    /** To derive σ from epsilon: the rounds the job plans and the fleet size (q = agentsPerRound / fleetSize). */
    rounds: z.number().int().positive().optional(),
    fleetSize: z.number().int().positive().optional(),
  })
  .refine((c) => c.noiseMultiplier !== undefined || c.epsilon !== undefined, {
    path: ['noiseMultiplier'],
    message: 'give noiseMultiplier, or epsilon (with rounds and fleetSize) to derive it',
  })
  .refine((c) => c.noiseMultiplier !== undefined || (c.rounds !== undefined && c.fleetSize !== undefined), {
    path: ['fleetSize'],
    message: 'rounds and fleetSize are needed to derive the noise multiplier from epsilon',
  });
export type CentralDpConfig = z.output<typeof centralDpConfigSchema>;

/**
 * The DP options a command takes (`dp` in mezo simulate's and mezo coordinator's configs). A simulation knows its
 * fleet; a coordinator is told it (`fleetSize`) when σ is to be derived from the ε budget.
 */
export function centralDpOptionsSchema(withFleetSize: boolean) {
  return z
    .strictObject({
      clip: z.number().positive().finite(),
      noiseMultiplier: z.number().positive().finite().optional(),
      epsilon: z.number().positive().finite().optional(),
      delta: z.number().gt(0).lt(1).default(1e-5),
      fleetSize: z.number().int().positive().optional(),
    })
    .refine((d) => d.noiseMultiplier !== undefined || d.epsilon !== undefined, { path: ['noiseMultiplier'], message: 'give noiseMultiplier or epsilon' })
    .refine((d) => withFleetSize || d.fleetSize === undefined, { path: ['fleetSize'], message: "a simulation's fleet size is its agents" })
    .refine((d) => !withFleetSize || d.noiseMultiplier !== undefined || d.fleetSize !== undefined, {
      path: ['fleetSize'],
      message: 'deriving the noise multiplier from epsilon needs the fleet size (the agents that may be sampled)',
    });
}

export type CentralDpConfigInput = z.input<typeof centralDpConfigSchema>;

export class PrivacyConfigError extends Error {
  override name = 'PrivacyConfigError';
}

/** A standard normal draw from the operating system's cryptographic generator (Box–Muller on 53-bit uniforms). */
export function cryptoGaussian(): number {
  const bytes = randomBytes(16);
  const u = (offset: number) => ((bytes.readUInt32BE(offset) >>> 5) * 67108864 + (bytes.readUInt32BE(offset + 4) >>> 6) + 1) / 9007199254740993;
  return Math.sqrt(-2 * Math.log(u(0))) * Math.cos(2 * Math.PI * u(8));
}

export class CentralDpStrategy implements Strategy {
  readonly config: CentralDpConfig;
  /** The wrapped strategy's round size: the wrapper asks the same agents. */
  get agentsPerRound(): number {
    return this.inner.agentsPerRound;
  }

  readonly noiseMultiplier: number;
  private readonly accountant = new RdpAccountant();
  private readonly assigned = new Map<string, { rate: number; seeds: Map<bigint, number> }>();
  private lastRate: number | undefined;
  private spentOut = false;
  private readonly spentListeners = new Set<() => void>();

  constructor(
    readonly inner: MezoStrategy,
    config: CentralDpConfigInput,
  ) {
    const parsed = centralDpConfigSchema.safeParse(config);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new PrivacyConfigError(`dp: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    this.config = parsed.data;
    const { aggregation, seedMode, clip } = inner.config;
    // Robust aggregators pick or drop values by rank, so one agent can move them by more than C/a: the noise
    // would not cover it. Pool mode's agents per seed vary with the round's start, so a is not fixed in advance.
    if (aggregation !== 'mean') throw new PrivacyConfigError(`dp: strategy.aggregation must be 'mean' with central DP, got '${aggregation}'`);
    if (seedMode === 'pool') throw new PrivacyConfigError("dp: strategy.seedMode 'pool' is not supported with central DP (use 'shared' or 'distinct')");
    if (clip !== undefined) throw new PrivacyConfigError('dp: set the DP clip only; strategy.clip would clip twice');
    // The wrapper releases its own noised terms and reads only the inner schedule's rate: momentum, the loss guard
    // and the plateau rule would act on unreleased values (or on its placeholder), so they are refused.
    for (const option of ['momentum', 'lossGuard', 'plateau'] as const) {
      if (inner.config[option]) throw new PrivacyConfigError(`dp: strategy.${option} is not supported with central DP`);
    }
    const { noiseMultiplier, epsilon, delta, rounds, fleetSize } = parsed.data;
    this.noiseMultiplier =
      noiseMultiplier ?? noiseMultiplierFor({ epsilon: epsilon!, delta }, Math.min(1, inner.config.agentsPerRound / fleetSize!), rounds!);
  }

  /** ε spent so far at the configured δ. */
  get epsilon(): number {
    return this.accountant.epsilon(this.config.delta);
  }

  /** What the budget has spent: the run record's summary.privacy and the commands' reports. */
  spent(): { noiseMultiplier: number; epsilon: number; delta: number; roundsReleased: number; budgetSpent: boolean } {
    return { noiseMultiplier: this.noiseMultiplier, epsilon: this.epsilon, delta: this.config.delta, roundsReleased: this.roundsReleased, budgetSpent: this.nextRoundExceedsBudget() };
  }

  /** Rounds released so far. */
  get roundsReleased(): number {
    return this.accountant.rounds;
  }

  /** True once a round was refused because releasing it would have exceeded the budget. */
  get exhausted(): boolean {
    return this.spentOut;
  }

  /** Calls `listener` once the strategy refuses a round for the budget; returns its unsubscribe. */
  onBudgetSpent(listener: () => void): () => void {
    this.spentListeners.add(listener);
    return () => this.spentListeners.delete(listener);
  }

  private budgetSpent(): void {
    if (this.spentOut) return;
    this.spentOut = true;
    for (const listener of this.spentListeners) listener();
  }

  /** Whether one more round at the last round's sampling rate would exceed the budget. */
  nextRoundExceedsBudget(): boolean {
    if (this.spentOut) return true;
    if (this.config.epsilon === undefined || this.lastRate === undefined) return false;
    return this.accountant.epsilonAfter(this.lastRate, this.noiseMultiplier, this.config.delta) > this.config.epsilon;
  }

  /** The round loop asks before every attempt: the job ends cleanly once one more round would exceed the budget. */
  shouldEndJob(): boolean {
    return this.nextRoundExceedsBudget();
  }

  configureRound(context: RoundContext, agents: readonly AgentView[]): Assignment[] {
    if (this.spentOut) return [];
    const assignments = this.inner.configureRound(context, agents);
    // The real rate: each eligible connected agent is chosen with probability (asked / eligible).
    const eligible = agents.filter((a) => !a.capabilities.busy).length;
    const rate = eligible === 0 ? 1 : Math.min(1, assignments.length / eligible);
    if (this.config.epsilon !== undefined && this.accountant.epsilonAfter(rate, this.noiseMultiplier, this.config.delta) > this.config.epsilon) {
      this.budgetSpent();
      return [];
    }
    const seeds = new Map<bigint, number>();
    for (const a of assignments) for (const s of a.seeds) seeds.set(s, (seeds.get(s) ?? 0) + 1);
    this.assigned.set(`${context.round}/${context.attempt}`, { rate, seeds });
    return assignments;
  }

  /**
   * The inner strategy's per-task config, when a subclass of it gives one: it travels from the coordinator to
   * the agents only, so it releases nothing the accountant would have to count.
   */
  configureTask(context: RoundContext, agentId: string): TaskConfig | undefined {
    return (this.inner as Strategy).configureTask?.(context, agentId);
  }

  aggregate(context: RoundContext, results: readonly AgentResult[]): AggregatedUpdate | null {
    const key = `${context.round}/${context.attempt}`;
    const round = this.assigned.get(key);
    // Attempts of earlier rounds are done with: forget their assignments.
    for (const k of this.assigned.keys()) if (Number(k.split('/')[0]) < context.round) this.assigned.delete(k);
    if (!round) return null;
    if (this.config.epsilon !== undefined && this.accountant.epsilonAfter(round.rate, this.noiseMultiplier, this.config.delta) > this.config.epsilon) {
      this.budgetSpent();
      return null;
    }
    const C = this.config.clip;
    const sums = new Map<bigint, number>([...round.seeds.keys()].map((s) => [s, 0]));
    let lossSum = 0;
    let lossCount = 0;
    const ordered = [...results].sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
    for (const r of ordered) {
      const norm = Math.sqrt(r.g.reduce((s, x) => s + x * x, 0));
      const scale = norm > C ? C / norm : 1;
      r.seeds.forEach((seed, k) => {
        if (!sums.has(seed)) return; // not assigned this round: the coordinator already rejects such results
        sums.set(seed, sums.get(seed)! + scale * r.g[k]!);
        if (r.lossPlus && r.lossMinus) {
          lossSum += (r.lossPlus[k]! + r.lossMinus[k]!) / 2;
          lossCount++;
        }
      });
    }
    // The rate and decay are the inner strategy's (its schedule at this round), read from an aggregate of a
    // public placeholder so the wrapper follows whatever schedule the strategy has.
    const { lr, decay } = this.inner.aggregate(context, [{ agentId: '', seeds: [0n], g: [0], lossPlus: [0], lossMinus: [0], sampleCount: 1 }])!;
    const seedCount = sums.size;
    const terms = [...sums].map(([seed, sum]) => {
      const a = round.seeds.get(seed)!;
      const released = sum / a + cryptoGaussian() * ((this.noiseMultiplier * C) / a);
      return { seed, coeff: (-lr * released) / seedCount };
    });
    this.accountant.step(round.rate, this.noiseMultiplier);
    this.lastRate = round.rate;
    this.assigned.delete(key);
    return { lr, decay, terms, trainLoss: lossCount > 0 ? lossSum / lossCount : Number.NaN };
  }
}

/**
 * Ends the coordinator's job cleanly (agents hear 'stopped') after the last round the budget allows: checked
 * after every committed round at that round's sampling rate, and whenever the strategy refuses a round (its rate
 * may have risen since: fewer agents connected), so a spent budget never turns into failed attempts. Returns the
 * unsubscribe. A coordinator whose strategy is this one stops the same way through shouldEndJob; the listener
 * serves one whose strategy wraps it (the round loop asks only its own strategy).
 */
export function stopAtPrivacyBudget(coordinator: Coordinator, strategy: CentralDpStrategy): () => void {
  const stop = () => coordinator.stop({ endJob: true });
  const offRound = coordinator.onRound((report) => {
    // After the job's last round there is nothing to stop: the job completes.
    if (report.round + 1 < coordinator.options.rounds && strategy.nextRoundExceedsBudget()) stop();
  });
  const offSpent = strategy.onBudgetSpent(stop);
  return () => {
    offRound();
    offSpent();
  };
}
