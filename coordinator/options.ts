/** The coordinator's round-loop settings (the CLI layers file, MEZO_COORDINATOR_* env and flags onto these). */
import { z } from 'zod';
import { strategyConfigSchema } from './strategy.js';
import { recordDpSchema } from '../shared/privacy/record-dp.js';
import { distributionSchema, rankSchema, refinePerturbation } from '../shared/optim/perturbation.js';
import { estimatorSchema, minSeedsFor } from '../shared/optim/estimator.js';

export const roundOptionsSchema = z
  .strictObject({
    jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -').default('mezo-job'),
    /** Total rounds of the job; a restarted coordinator runs only the rounds its log does not hold yet. */
    rounds: z.number().int().min(0).default(100),
    /** Results needed to close a round (k of the n agents asked); default: all asked. */
    quorum: z.number().int().min(1).optional(),
    /** Milliseconds from sending a round's tasks to giving up on missing results. */
    deadlineMs: z.number().int().min(1).max(3_600_000).default(10_000),
    /** Attempts per round (each with fresh seeds) before the run fails. */
    maxAttempts: z.number().int().min(1).default(5),
    /** How long an attempt waits for `quorum` agents to be connected before it counts as failed. */
    waitForAgentsMs: z.number().int().min(0).default(30_000),
    epsilon: z.number().positive().finite().default(1e-3),
    batchSize: z.number().int().min(1).max(1 << 20).default(64),
    distribution: distributionSchema.default('gaussian'),
    /** Rank of 'lowrank' noise (required with it, 1–64); part of the log header and the join message. */
    rank: rankSchema.optional(),
    strategy: strategyConfigSchema.prefault({}),
    /**
     * How agents turn losses into g (shared/optim/estimator.ts): 'central', two forward passes per seed, or
     * 'forward', one per seed centred on the task's mean (needs strategy.seedsPerAgent ≥ 2).
     */
    estimator: estimatorSchema.default('central'),
    /**
     * Agents not asked in the next round receive committed updates in batches, at most this many ms after the
     * commit (0: on the next turn of the event loop). Agents asked in a round always get every update before
     * their task. Batching turns a large fleet's per-round broadcast into one write per connection per batch.
     */
    broadcastIntervalMs: z.number().int().min(0).max(60_000).default(0),
    /** Heartbeat and ping period; a session silent for 5 periods is closed. */
    heartbeatMs: z.number().int().min(10).max(600_000).default(2000),
    /**
     * A shared join token (empty: none required) and/or per-agent tokens. An agent listed in `tokens` must
     * present its own token; with `tokens` set and no shared token, agents not listed are refused.
     */
    token: z.string().max(1024).default(''),
    tokens: z.record(z.string(), z.string().min(1).max(1024)).default({}),
    /**
     * Per-agent message budget, a token bucket: `perSecond` refill up to `burst`. Every Heartbeat, Pong and
     * unrequested Result on the Session stream and every Join and FetchLog call costs one (the result of an open
     * assignment does not); an agent over budget has its call refused (or its session ended) with
     * RESOURCE_EXHAUSTED. perSecond 0 turns the limit off.
     */
    rateLimit: z
      .strictObject({ perSecond: z.number().min(0).default(100), burst: z.number().int().min(1).default(200) })
      .prefault({}),
    /**
     * Failed authentication per peer address (coordinator/auth-failure-limiter.ts): a token bucket that only
     * failures drain, `perSecond` refill up to `burst`; while it is empty, the peer's calls are refused with
     * RESOURCE_EXHAUSTED before their credentials are checked. At most `maxPeers` addresses are tracked.
     * perSecond 0 turns the limit off.
     */
    authFailureLimit: z
      .strictObject({
        perSecond: z.number().min(0).default(10),
        burst: z.number().int().min(1).default(100),
        maxPeers: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .prefault({}),
    maxAgents: z.number().int().min(1).default(10_000),
    /** Bound on |g| an agent may report; larger values are rejected as garbage. */
    maxAbsG: z.number().positive().default(1e6),
    /** Keep a materialised copy of the weights to audit agents' heartbeat hashes. */
    audit: z.boolean().default(true),
    /**
     * Compaction (pool seed mode): append a rebase record after every n committed updates, re-anchoring every
     * replica at base + the pool's K coefficient sums (docs/protocol.md, "Compaction"). Unset: never.
     */
    compactEvery: z.number().int().min(1).optional(),
    /**
     * Record-level DP (docs/privacy.md): every task tells its agent to clip per example and add noise; in private
     * mode agents send no losses, and the coordinator checks g's range instead of its consistency with them.
     */
    recordDp: recordDpSchema.optional(),
  })
  .refine((o) => !o.recordDp?.private || (o.strategy.lossGuard === undefined && o.strategy.plateau === undefined), {
    path: ['recordDp', 'private'],
    message: 'private mode sends no losses, which strategy.lossGuard and strategy.plateau read',
  })
  .refine((o) => o.strategy.seedsPerAgent >= minSeedsFor(o.estimator), {
    path: ['estimator'],
    message: "'forward' centres each task's losses on their mean, so it needs strategy.seedsPerAgent ≥ 2",
  })
  .refine((o) => o.estimator === 'central' || o.recordDp === undefined, {
    path: ['estimator'],
    message: "record-level DP clips each example's two-sided difference, so it needs the 'central' estimator",
  })
  .refine((o) => o.quorum === undefined || o.quorum <= o.strategy.agentsPerRound, {
    path: ['quorum'],
    message: 'must not exceed strategy.agentsPerRound',
  })
  .refine((o) => o.compactEvery === undefined || o.strategy.seedMode === 'pool', {
    path: ['compactEvery'],
    message: "needs strategy.seedMode 'pool': only a job-wide pool of K seeds collapses to K terms",
  })
  .refine((o) => o.compactEvery === undefined || o.strategy.weightDecay === 0, {
    path: ['compactEvery'],
    message: 'cannot be used with strategy.weightDecay: decay multiplies the weights, so the history does not collapse to per-seed sums',
  })
  .superRefine(refinePerturbation);
export type RoundOptions = z.output<typeof roundOptionsSchema>;
export type RoundOptionsInput = z.input<typeof roundOptionsSchema>;

export function parseRoundOptions(input: RoundOptionsInput): RoundOptions {
  const parsed = roundOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RangeError(`coordinator options: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
