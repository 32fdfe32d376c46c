/**
 * The run record: what one fine-tuning run did, round by round, as JSON (`run.json`). A RunMonitor writes it
 * (for `mezo coordinator --run-record` and `mezo simulate`); `mezo report` renders it. Every field is checked
 * by the zod schema below before a report is drawn, and an error names the offending field. docs/dashboard.md
 * describes the fields.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

export const RUN_RECORD_FORMAT = 'mezo-run-record/1';

const count = z.number().int().min(0);
const hash = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const finite = z.number().finite();
const ratio = z.number().min(0).max(1);

/** Counts of the round's scalars in equal-width bins over [min, max] (one bin when every value is the same). */
export const histogramSchema = z.strictObject({
  min: finite,
  max: finite,
  counts: z.array(count).min(1),
});
export type Histogram = z.output<typeof histogramSchema>;

export const scalarSummarySchema = z.strictObject({
  /** g values merged in the round (one per agent and seed). */
  count,
  mean: finite.nullable(),
  min: finite.nullable(),
  max: finite.nullable(),
  /** Fraction of the values above zero. */
  positiveFraction: ratio.nullable(),
  histogram: histogramSchema.nullable(),
});
export type ScalarSummary = z.output<typeof scalarSummarySchema>;

export const roundRowSchema = z.strictObject({
  round: count,
  /** Attempts that failed before this one committed. */
  attempt: count,
  /** Log version after the round (its entry's version). */
  version: z.number().int().min(1),
  /** The log head after the round: the entry's hash. */
  hash,
  /** Seconds from the start of the run to the commit. */
  at: z.number().min(0),
  /** Round latency: tasks sent to update appended, in seconds. */
  durationSeconds: z.number().min(0),
  /** Mean of (L+ + L-)/2 over the merged results; null when not finite. */
  trainLoss: finite.nullable(),
  lr: finite,
  /** Agents with an open session at the commit. */
  connected: count,
  /** Agents sent a task in the committed attempt (sampled). */
  asked: count,
  /** Results merged. */
  answered: count,
  /** Asked agents that disconnected before answering. */
  dropped: count,
  /** Results that arrived after their round closed, since the previous row. */
  late: count,
  /** Results rejected, since the previous row. */
  rejected: count,
  /** Encoded bytes agents sent (up) and received (down) since the previous row. */
  bytesUp: count,
  bytesDown: count,
  scalars: scalarSummarySchema,
  /**
   * Over seeds evaluated by two or more agents: the fraction of (agent, seed) scalars whose sign matches the
   * sign of the seed's aggregate. Null when every seed was evaluated by one agent.
   */
  signAgreement: ratio.nullable(),
  /** Connected replicas whose reported weights hash differs from the coordinator's at the same version. */
  divergent: count,
  /** Largest (head version − version an agent reported) over connected agents. */
  maxReplayLag: count,
  /** Central DP: ε spent after this round, at the summary's privacy.delta (absent without DP). */
  privacyEpsilon: z.number().min(0).optional(),
  /** Record-level DP: ε per agent's data after this round, at the summary's recordPrivacy.delta (absent without it). */
  recordPrivacyEpsilon: z.number().min(0).optional(),
});
export type RoundRow = z.output<typeof roundRowSchema>;

/** Held-out evaluation of the model after `round` (-1: before the first round, the base weights). */
export const evaluationSchema = z.strictObject({
  round: z.number().int().min(-1),
  accuracy: ratio.nullable(),
  loss: finite.nullable(),
});
export type Evaluation = z.output<typeof evaluationSchema>;

export const agentRowSchema = z.strictObject({
  id: z.string().min(1),
  connected: z.boolean(),
  /** Version the agent last reported (join or heartbeat). */
  version: count,
  replayLag: count,
  /** Whether its weights hash matches the coordinator's at its version; null when it cannot be checked. */
  weightsMatch: z.boolean().nullable(),
  tasks: count,
  accepted: count,
  late: count,
  dropped: count,
  rejected: count,
  /** Heartbeats whose weights hash differed from the coordinator's. */
  divergentHeartbeats: count,
  bytesUp: count,
  bytesDown: count,
});
export type AgentRow = z.output<typeof agentRowSchema>;

export const privacySpentSchema = z.strictObject({
  noiseMultiplier: z.number().positive(),
  epsilon: z.number().min(0),
  delta: z.number().gt(0).lt(1),
  roundsReleased: count,
  budgetSpent: z.boolean(),
});
export type PrivacySpent = z.output<typeof privacySpentSchema>;

/** Record-level DP (shared/privacy/record-dp.ts): ε per agent's data for the smallest shard. */
export const recordPrivacySpentSchema = z.strictObject({
  clip: z.number().positive(),
  noiseMultiplier: z.number().positive(),
  private: z.boolean(),
  epsilon: z.number().min(0),
  delta: z.number().gt(0).lt(1),
  rounds: count,
  shardSize: z.number().int().positive(),
  budgetSpent: z.boolean(),
});
export type RecordPrivacySpent = z.output<typeof recordPrivacySpentSchema>;

export const runSummarySchema = z.strictObject({
  rounds: count,
  version: count,
  headHash: hash,
  wallSeconds: z.number().min(0),
  /** Held-out accuracy before the first round and after the last evaluation, when recorded. */
  accuracyBefore: ratio.nullable(),
  accuracyAfter: ratio.nullable(),
  lossFirst: finite.nullable(),
  lossLast: finite.nullable(),
  /** Attempts that failed before their round committed, summed over the rounds. */
  failedAttempts: count,
  agents: count,
  bytesUp: count,
  bytesDown: count,
  /** Mean over the agents that moved any bytes. */
  bytesUpPerAgent: z.number().min(0),
  bytesDownPerAgent: z.number().min(0),
  late: count,
  dropped: count,
  /** Rejected results by reason (docs/protocol.md), over the whole run. */
  rejected: z.record(z.string(), count),
  /** Central DP (docs/privacy.md): ε spent at δ, the rounds released, and whether the budget holds no further round. */
  privacy: privacySpentSchema.optional(),
  /** Record-level DP (docs/privacy.md): ε per agent's data at δ, σ, clip, rounds accounted, private mode. */
  recordPrivacy: recordPrivacySpentSchema.optional(),
});
export type RunSummary = z.output<typeof runSummarySchema>;

export const runRecordSchema = z.strictObject({
  format: z.literal(RUN_RECORD_FORMAT),
  kind: z.enum(['simulate', 'coordinator']),
  job: z.string().min(1),
  startedAt: z.iso.datetime(),
  /** Null while the run is still going. */
  endedAt: z.iso.datetime().nullable(),
  /** The run's settings worth reporting (free-form JSON values). */
  config: z.record(z.string(), z.json()),
  rounds: z.array(roundRowSchema),
  evaluations: z.array(evaluationSchema),
  agents: z.array(agentRowSchema),
  summary: runSummarySchema,
});
export type RunRecord = z.output<typeof runRecordSchema>;

export class RunRecordError extends Error {
  override name = 'RunRecordError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || '(root)';
}

/** Checks a parsed JSON value; the error names the first offending field. */
export function parseRunRecord(value: unknown, source = 'run record'): RunRecord {
  const result = runRecordSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RunRecordError(`${source}: ${fieldPath(issue.path)}: ${issue.message}`, { cause: result.error });
  }
  return result.data;
}

/** Reads and checks a run.json. */
export async function readRunRecord(path: string): Promise<RunRecord> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RunRecordError(`${path}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RunRecordError(`${path}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseRunRecord(value, path);
}
