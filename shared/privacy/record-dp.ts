/**
 * Record-level differential privacy on the agent (DP-ZO, Tang et al. 2024): the agent clips each example's
 * projected gradient inside the batch, sums, adds Gaussian noise and releases only the noised g.
 *
 * The mechanism for one task of k seeds on a batch (its size B fixed by the task, public): for each seed s and
 * example i, g_{s,i} = (L₊_{s,i} − L₋_{s,i}) / 2ε from the two forward passes already run, clipped to
 * [−C/√k, C/√k]; the release is g_s = (Σ_i clip(g_{s,i}) + N(0, σ²C²)) / B. One example more or less moves the
 * vector of sums by at most C in L2 (k coordinates of at most C/√k), so the task is one Gaussian mechanism with
 * noise multiplier σ on that example. Clipping each seed's value separately (rather than the example's vector
 * over the seeds) needs no storage beyond one batch of losses, so memory stays at inference level.
 *
 * The noise comes from the operating system's cryptographic generator, never from a seed, so nobody who knows
 * the task can regenerate and subtract it.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RdpAccountant, noiseMultiplierFor } from './rdp-accountant.js';

/** What a job tells its agents to apply (the Task carries it). */
export const recordDpSchema = z.strictObject({
  /** C: the bound on the L2 norm of one example's projected gradients over a task's seeds. */
  clip: z.number().positive().finite(),
  /** σ: noise standard deviation on each seed's sum, in units of C. */
  noiseMultiplier: z.number().positive().finite(),
  /** Private mode: release only the noised g, no losses, and the task's batch size as the sample count. */
  private: z.boolean().default(false),
});
export type RecordDp = z.output<typeof recordDpSchema>;
export type RecordDpInput = z.input<typeof recordDpSchema>;

export class RecordDpError extends Error {
  override name = 'RecordDpError';
}

/** Parses record-DP settings, naming the first offending field under `root`. */
export function parseRecordDp(value: unknown, root = 'recordDp'): RecordDp {
  const parsed = recordDpSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RecordDpError(`${[root, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** A standard normal draw from the operating system's cryptographic generator (Box–Muller on 53-bit uniforms). */
export function secureGaussian(): number {
  const bytes = randomBytes(16);
  const u = (offset: number) => ((bytes.readUInt32BE(offset) >>> 5) * 67108864 + (bytes.readUInt32BE(offset + 4) >>> 6) + 1) / 9007199254740993;
  return Math.sqrt(-2 * Math.log(u(0))) * Math.cos(2 * Math.PI * u(8));
}

/** The bound each example's projected gradient on one seed is clipped to: C/√k for a task of k seeds. */
export function perSeedClip(dp: Pick<RecordDp, 'clip'>, seeds: number): number {
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new RangeError(`seeds must be a positive integer, got ${seeds}`);
  return dp.clip / Math.sqrt(seeds);
}

/**
 * The released g of one seed from the per-example losses at +ε and −ε: clipped per example, summed, noised and
 * divided by the task's batch size. NaN when a loss is not finite (the task is then not answered at all).
 */
export function noisedProjectedGradient(
  plus: ArrayLike<number>,
  minus: ArrayLike<number>,
  epsilon: number,
  dp: Pick<RecordDp, 'clip' | 'noiseMultiplier'>,
  seeds: number,
  batchSize: number,
  gaussian: () => number = secureGaussian,
): number {
  if (plus.length !== minus.length) throw new RangeError(`per-example losses: ${plus.length} at +ε but ${minus.length} at −ε`);
  if (!(Number.isInteger(batchSize) && batchSize >= plus.length && batchSize >= 1)) {
    throw new RangeError(`batchSize must be an integer of at least the batch's ${plus.length} examples, got ${batchSize}`);
  }
  const bound = perSeedClip(dp, seeds);
  let sum = 0;
  for (let i = 0; i < plus.length; i++) {
    const g = (plus[i]! - minus[i]!) / (2 * epsilon);
    if (!Number.isFinite(g)) return Number.NaN;
    sum += Math.max(-bound, Math.min(bound, g));
  }
  return (sum + gaussian() * dp.noiseMultiplier * dp.clip) / batchSize;
}

/**
 * The largest |g| an honest agent releases, but for noise beyond 10 standard deviations (probability about
 * 1.5e-23 per value): the coordinator's range check in place of the loss-consistency check it cannot run.
 */
export function maxAbsRecordDpG(dp: Pick<RecordDp, 'clip' | 'noiseMultiplier'>, seeds: number, batchSize: number): number {
  return perSeedClip(dp, seeds) + (10 * dp.noiseMultiplier * dp.clip) / batchSize;
}

/** The chance that one example is in one task's batch: B / n (all of a shard smaller than the batch). */
export function recordSamplingRate(batchSize: number, shardSize: number): number {
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!(Number.isInteger(shardSize) && shardSize >= 1)) throw new RangeError(`shardSize must be a positive integer, got ${shardSize}`);
  return Math.min(1, batchSize / shardSize);
}

/** What record-level DP spent: reported next to the central DP's ε. */
export interface RecordPrivacySpent {
  clip: number;
  noiseMultiplier: number;
  private: boolean;
  /** ε at δ for the data of an agent holding `shardSize` examples. */
  epsilon: number;
  delta: number;
  /** Rounds (federated) or steps (local training) accounted. */
  rounds: number;
  /** The shard size the accountant assumes (the smallest an agent holds). */
  shardSize: number;
  budgetSpent: boolean;
}

/**
 * ε per agent's data under record-level DP. One round uses an example when its agent is asked (rate a, the
 * agents asked over those that could be) and the example is in the batch (rate B/n); the two draws are
 * independent, so the round is a subsampled Gaussian at q = a·B/n (under the Poisson approximation the central
 * accountant makes too). Without agent sampling (local training, or a = 1) every step is a round at B/n.
 */
export class RecordDpAccountant {
  private readonly accountant = new RdpAccountant();
  private lastRate: number | undefined;
  readonly recordRate: number;

  constructor(
    readonly dp: RecordDp,
    readonly batchSize: number,
    readonly shardSize: number,
    readonly delta: number,
    readonly budget?: number,
  ) {
    if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
    if (budget !== undefined && !(budget > 0)) throw new RangeError(`epsilon budget must be positive, got ${budget}`);
    this.recordRate = recordSamplingRate(batchSize, shardSize);
  }

  /** Accounts one round in which a fraction `agentRate` of the eligible agents was asked. */
  step(agentRate = 1): void {
    if (!(agentRate >= 0 && agentRate <= 1)) throw new RangeError(`agentRate must be in [0, 1], got ${agentRate}`);
    this.lastRate = agentRate * this.recordRate;
    this.accountant.step(this.lastRate, this.dp.noiseMultiplier);
  }

  get epsilon(): number {
    return this.accountant.epsilon(this.delta);
  }

  get rounds(): number {
    return this.accountant.rounds;
  }

  /** Whether one more round at the last round's rate would take ε past the budget. */
  nextRoundExceedsBudget(): boolean {
    if (this.budget === undefined || this.lastRate === undefined) return false;
    return this.accountant.epsilonAfter(this.lastRate, this.dp.noiseMultiplier, this.delta) > this.budget;
  }

  spent(): RecordPrivacySpent {
    return {
      clip: this.dp.clip,
      noiseMultiplier: this.dp.noiseMultiplier,
      private: this.dp.private,
      epsilon: this.epsilon,
      delta: this.delta,
      rounds: this.rounds,
      shardSize: this.shardSize,
      budgetSpent: this.nextRoundExceedsBudget(),
    };
  }
}

/** σ for a target ε at δ over `rounds` rounds, at agent rate a and record rate B/n. */
export function recordNoiseMultiplierFor(target: { epsilon: number; delta: number }, agentRate: number, batchSize: number, shardSize: number, rounds: number): number {
  return noiseMultiplierFor(target, Math.min(1, agentRate) * recordSamplingRate(batchSize, shardSize), rounds);
}

/** The summary's record-DP line. */
export function formatRecordPrivacy(p: RecordPrivacySpent): string {
  return (
    `record DP${p.private ? ' (private mode)' : ''}: ε = ${p.epsilon.toFixed(3)} at δ = ${p.delta.toExponential()} per agent's data ` +
    `(${p.shardSize} examples) after ${p.rounds} rounds, noise multiplier ${p.noiseMultiplier.toFixed(3)}, clip ${p.clip}` +
    (p.budgetSpent ? ' (budget spent)' : '')
  );
}

/**
 * Record-level DP as a command's options (`recordDp` in mezo simulate's and mezo coordinator's configs): σ given,
 * or derived from an ε budget at δ. A simulation knows its fleet and shards; a coordinator is told the fewest
 * examples an agent holds (`shardSize`, which the accountant needs) and, to derive σ, the fleet size.
 */
export function recordDpOptionsSchema(forCoordinator: boolean) {
  return z
    .strictObject({
      clip: z.number().positive().finite(),
      noiseMultiplier: z.number().positive().finite().optional(),
      epsilon: z.number().positive().finite().optional(),
      delta: z.number().gt(0).lt(1).default(1e-5),
      private: z.boolean().default(false),
      shardSize: z.number().int().positive().optional(),
      fleetSize: z.number().int().positive().optional(),
    })
    .refine((d) => d.noiseMultiplier !== undefined || d.epsilon !== undefined, { path: ['noiseMultiplier'], message: 'give noiseMultiplier or epsilon' })
    .refine((d) => forCoordinator || (d.shardSize === undefined && d.fleetSize === undefined), {
      path: ['shardSize'],
      message: "a simulation's shards and fleet are its own",
    })
    .refine((d) => !forCoordinator || d.shardSize !== undefined, {
      path: ['shardSize'],
      message: 'the accountant needs the fewest examples an agent holds',
    })
    .refine((d) => !forCoordinator || d.noiseMultiplier !== undefined || d.fleetSize !== undefined, {
      path: ['fleetSize'],
      message: 'deriving the noise multiplier from epsilon needs the fleet size (the agents that may be sampled)',
    });
}
export type RecordDpOptions = z.output<ReturnType<typeof recordDpOptionsSchema>>;

/**
 * The settings agents apply and the accountant of a job with record-level DP: σ is the given one, or the smallest
 * that keeps `rounds` rounds at agent rate agentsPerRound / fleetSize and record rate batchSize / shardSize
 * within the ε budget.
 */
export function resolveRecordDp(
  options: RecordDpOptions,
  job: { agentsPerRound: number; fleetSize: number | undefined; batchSize: number; shardSize: number; rounds: number },
): { dp: RecordDp; accountant: RecordDpAccountant } {
  const noiseMultiplier =
    options.noiseMultiplier ??
    recordNoiseMultiplierFor({ epsilon: options.epsilon!, delta: options.delta }, job.agentsPerRound / job.fleetSize!, job.batchSize, job.shardSize, job.rounds);
  const dp = parseRecordDp({ clip: options.clip, noiseMultiplier, private: options.private });
  return { dp, accountant: new RecordDpAccountant(dp, job.batchSize, job.shardSize, options.delta, options.epsilon) };
}

/**
 * What an agent holds a job to, whatever its tasks say: at most this clip, at least this noise multiplier,
 * private mode. A task below the floor is declined (reason 'privacy'), not evaluated.
 */
export const privacyFloorSchema = z
  .strictObject({
    maxClip: z.number().positive().finite().optional(),
    minNoiseMultiplier: z.number().positive().finite().optional(),
    requirePrivate: z.boolean().default(false),
  })
  .refine((f) => f.maxClip !== undefined || f.minNoiseMultiplier !== undefined || f.requirePrivate, {
    path: ['minNoiseMultiplier'],
    message: 'give maxClip, minNoiseMultiplier or requirePrivate',
  });
export type PrivacyFloor = z.output<typeof privacyFloorSchema>;

/** Why a task's record privacy is below the floor, or undefined when it meets it. */
export function belowPrivacyFloor(
  floor: PrivacyFloor,
  task: { clip: number; noiseMultiplier: number; privateMode: boolean } | undefined,
): string | undefined {
  if (!task) return 'the task asks for no record-level DP';
  if (floor.maxClip !== undefined && task.clip > floor.maxClip) return `clip ${task.clip} is above the floor's ${floor.maxClip}`;
  if (floor.minNoiseMultiplier !== undefined && task.noiseMultiplier < floor.minNoiseMultiplier) {
    return `noise multiplier ${task.noiseMultiplier} is below the floor's ${floor.minNoiseMultiplier}`;
  }
  if (floor.requirePrivate && !task.privateMode) return 'the task is not in private mode';
  return undefined;
}
