/**
 * The protocol's messages (proto/mezo/v1/agent.proto) in two forms: the wire form (what proto-loader decodes:
 * 64-bit integers as decimal strings, enums as names, oneofs named by `body`) and the typed form the coordinator
 * and agents work with (seeds as bigint, versions as safe integers). Every message a transport receives goes
 * through a decode function here, which validates it with zod and names the first offending field; nothing
 * unvalidated reaches coordinator or agent state.
 */
import { z } from 'zod';
import type { EntryKind, LogEntry } from '../log/index.js';
import type { Estimator } from '../optim/estimator.js';
import type { Distribution } from '../noise/index.js';
import { MessageValidationError } from './errors.js';

/** Largest number of seeds in one task or result. */
export const MAX_SEEDS_PER_TASK = 4096;
/** Largest number of terms in one broadcast update. */
export const MAX_TERMS_PER_UPDATE = 65_536;
/** Largest number of entries in one FetchLog page. */
export const MAX_ENTRIES_PER_PAGE = 1024;
/** Bound on |g| and |loss| an agent may report; anything larger is garbage, not a gradient estimate. */
export const MAX_ABS_SCALAR = 1e12;
/** Largest slice of a snapshot's weights in one SnapshotChunk (bytes). */
export const MAX_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Default bound on one encoded message (bytes); larger ones are refused with RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const SEED_LIMIT = 1n << 64n;
const HEX64 = /^[0-9a-f]{64}$/;
const AGENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// ---- field schemas (accept the wire form, produce the typed form) ----

const decimal = z.string().regex(/^[0-9]{1,20}$/, 'must be a decimal unsigned integer');

const seed = z.union([decimal, z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.bigint()]).transform((value, ctx) => {
  const big = BigInt(value);
  if (big < 0n || big >= SEED_LIMIT) {
    ctx.addIssue({ code: 'custom', message: 'must be in [0, 2^64)' });
    return z.NEVER;
  }
  return big;
});

/** A 64-bit counter that must fit a safe integer (versions, rounds, byte counts). */
const counter = z.union([decimal, z.number().int().nonnegative()]).transform((value, ctx) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    ctx.addIssue({ code: 'custom', message: 'must be a safe integer' });
    return z.NEVER;
  }
  return n;
});

const uint32 = z.number().int().nonnegative().max(0xffffffff);
const finite = z.number().refine(Number.isFinite, 'must be finite');
const scalar = z.number().refine((x) => Number.isFinite(x) && Math.abs(x) <= MAX_ABS_SCALAR, `must be finite with |x| <= ${MAX_ABS_SCALAR}`);
const hex64 = z.string().regex(HEX64, 'must be 64 lowercase hex digits');
const agentId = z.string().regex(AGENT_ID, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');
const jobId = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -');
const distribution = z.enum(['GAUSSIAN', 'RADEMACHER', 'LOWRANK']).transform((d): Distribution => d.toLowerCase() as Distribution);
const seeds = z.array(seed).min(1, 'must hold at least one seed').max(MAX_SEEDS_PER_TASK, `must hold at most ${MAX_SEEDS_PER_TASK} seeds`);

// ---- message schemas ----

const jobEndReason = z
  .enum(['JOB_END_REASON_UNSPECIFIED', 'JOB_END_REASON_COMPLETED', 'JOB_END_REASON_STOPPED'])
  .refine((r) => r !== 'JOB_END_REASON_UNSPECIFIED', 'must be COMPLETED or STOPPED')
  .transform((r): JobEndReason => (r === 'JOB_END_REASON_COMPLETED' ? 'completed' : 'stopped'));

export const jobEndSchema = z.object({ jobId, reason: jobEndReason, version: counter, headHash: hex64 });

const capabilitiesSchema = z.object({
  memoryBytes: counter.default(0),
  cores: uint32.default(0),
  noiseImpl: z.string().max(32).default(''),
  // Optional in the typed form so peers and tests that predate them need not set them (the wire gives 0/false).
  /** The agent's memory budget (0 or absent: none given; memoryBytes is what it has). */
  memoryBudgetBytes: counter.optional(),
  /** Threads the agent caps its model and noise kernel at (0 or absent: no cap). */
  threads: uint32.optional(),
  /** The device is busy: the agent declines tasks until its load falls (heartbeats update it). */
  busy: z.boolean().optional(),
});

export const joinRequestSchema = z.object({
  agentId,
  token: z.string().max(1024),
  capabilities: z.preprocess((v) => v ?? {}, capabilitiesSchema),
  baseSha256: hex64,
  versionHeld: counter,
});

export const joinAcceptedSchema = z.object({
  jobId,
  distribution,
  /** The rank of 'lowrank' noise; 0 or absent with any other distribution (protobuf sends 0 when unset). */
  rank: uint32.transform((v) => (v === 0 ? undefined : v)).optional(),
  epsilon: finite.refine((x) => x > 0, 'must be positive'),
  baseSha256: hex64,
  currentVersion: counter,
  headHash: hex64,
  genesisHash: hex64,
  decayRanges: z
    .array(z.object({ start: counter, end: counter }).refine((r) => r.start < r.end, 'start must be below end'))
    .max(65_536)
    .transform((ranges) => ranges.map((r): [number, number] => [r.start, r.end])),
  heartbeatMs: uint32,
  snapshotVersion: counter.default(0),
  snapshotBytes: counter.default(0),
  logBytes: counter.default(0),
  logBytesAfterSnapshot: counter.default(0),
  logFloor: counter.default(0),
  /** The newest rebase record (0 or absent: none); the log path from a version below it starts at the rebase. */
  rebaseVersion: counter.optional(),
  /** Updates between rebase records (0: the job never compacts). */
  compactEvery: uint32.transform((v) => (v === 0 ? undefined : v)).optional(),
  /** Set when the job has ended: no tasks will come (proto-loader gives an unset message field as null). */
  jobEnd: z.preprocess((v) => v ?? undefined, jobEndSchema.optional()),
  /** The key that signs the log's entries (shared/log/log-signature.ts); empty or absent: the log is not signed. */
  logPublicKey: z
    .string()
    .optional()
    .transform((k) => (k === '' ? undefined : k))
    .pipe(z.string().regex(/^ed25519:[0-9a-f]{64}$/, 'must be "ed25519:" followed by 64 lowercase hex digits').optional()),
}).superRefine((m, ctx) => {
  if (m.distribution === 'lowrank' && (m.rank === undefined || m.rank > 64)) {
    ctx.addIssue({ code: 'custom', path: ['rank'], message: `must be in [1, 64] with distribution LOWRANK, got ${m.rank ?? 0}` });
  }
  if (m.distribution !== 'lowrank' && m.rank !== undefined) ctx.addIssue({ code: 'custom', path: ['rank'], message: 'must be 0 unless distribution is LOWRANK' });
  if (m.snapshotVersion > m.currentVersion) ctx.addIssue({ code: 'custom', path: ['snapshotVersion'], message: `must not exceed currentVersion (${m.currentVersion})` });
  if (m.logFloor > m.currentVersion) ctx.addIssue({ code: 'custom', path: ['logFloor'], message: `must not exceed currentVersion (${m.currentVersion})` });
  const rebase = m.rebaseVersion ?? 0;
  if (rebase > m.currentVersion) ctx.addIssue({ code: 'custom', path: ['rebaseVersion'], message: `must not exceed currentVersion (${m.currentVersion})` });
  if (m.logFloor > 0 && m.snapshotVersion < m.logFloor && rebase - 1 < m.logFloor) {
    ctx.addIssue({
      code: 'custom',
      path: ['snapshotVersion'],
      message: `must be at least logFloor (${m.logFloor}), unless a rebase record above the floor is (rebaseVersion ${rebase}): versions below the floor are served only as a snapshot or from the rebase`,
    });
  }
});

/** Largest number of participants one secure-aggregation message names. */
export const MAX_SECAGG_PEERS = 100_000;

const int32 = z.number().int().min(-0x80000000).max(0x7fffffff);
const bytesOf = (min: number, max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes').refine((d) => d.length >= min && d.length <= max, `must hold ${min === max ? min : `${min} to ${max}`} bytes`);
const x25519Key = bytesOf(32, 32);
/** 0 (absent) or a positive finite bound. */
const optionalBound = finite.refine((x) => x >= 0, 'must be 0 or positive');

/** How an agent encodes its scalars in a secure round (proto SecureAggregationSpec). */
export const secureAggregationSpecSchema = z.object({
  gScaleLog2: int32.refine((v) => Math.abs(v) <= 1000, 'must be within ±1000'),
  lossScaleLog2: int32.refine((v) => Math.abs(v) <= 1000, 'must be within ±1000'),
  weighted: z.boolean(),
  clipAbs: optionalBound,
  clipL2: optionalBound,
  gBound: finite.refine((x) => x > 0, 'must be positive'),
  lossBound: finite.refine((x) => x > 0, 'must be positive'),
});

const positiveScalar = finite.refine((x) => x > 0 && x <= MAX_ABS_SCALAR, `must be positive, at most ${MAX_ABS_SCALAR}`);
/** Record-level DP the agent applies to a task (shared/privacy/record-dp.ts). */
const recordPrivacySchema = z.object({ clip: positiveScalar, noiseMultiplier: positiveScalar, privateMode: z.boolean().default(false) });

/** Largest number of keys in a task's config (Strategy.configureTask). */
export const MAX_TASK_CONFIG_KEYS = 64;
/** Longest string value in a task's config (characters). */
export const MAX_TASK_CONFIG_STRING = 1024;
/** A task config key: a letter, then up to 63 of A-Z a-z 0-9 _ . - (so never `__proto__` or an empty name). */
const TASK_CONFIG_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** One value of a task's config. */
export type TaskConfigValue = string | number | boolean;
/** A Strategy's settings for one agent's task, carried to the agent's evaluation middleware (task.config). */
export type TaskConfig = Readonly<Record<string, TaskConfigValue>>;

/** A task config in its typed form: the bounds both ends check (the round loop before sending, agents on receipt). */
export const taskConfigSchema = z
  .record(z.string(), z.union([z.string().max(MAX_TASK_CONFIG_STRING, `must be at most ${MAX_TASK_CONFIG_STRING} characters`), finite, z.boolean()], 'must be a string, a finite number or a boolean'))
  .superRefine((config, ctx) => {
    const keys = Object.keys(config);
    if (keys.length > MAX_TASK_CONFIG_KEYS) ctx.addIssue({ code: 'custom', message: `must hold at most ${MAX_TASK_CONFIG_KEYS} keys, got ${keys.length}` });
    for (const key of keys) {
      if (!TASK_CONFIG_KEY.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'is not a valid key: a letter, then up to 63 of A-Z a-z 0-9 _ . -' });
    }
  });

const CONFIG_MEMBERS = ['stringValue', 'numberValue', 'boolValue'] as const;

/** A ConfigValue on the wire: exactly one member set (proto-loader names it in `value`; an unset member is absent or null). */
const wireConfigValue = z
  .object({ value: z.string().nullish(), stringValue: z.string().nullish(), numberValue: z.number().nullish(), boolValue: z.boolean().nullish() })
  .transform((v, ctx): TaskConfigValue => {
    const present = CONFIG_MEMBERS.filter((m) => v[m] != null);
    const member = present.length === 1 ? present[0] : present.find((m) => m === v.value);
    if (member === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must set exactly one of stringValue, numberValue, boolValue' });
      return z.NEVER;
    }
    return v[member]!;
  });

/** Task.config on the wire: a map (unset, from a peer that predates it, or empty: no config). */
const wireTaskConfig = z
  .preprocess((v) => v ?? {}, z.record(z.string(), wireConfigValue))
  .pipe(taskConfigSchema)
  .transform((config): TaskConfig | undefined => (Object.keys(config).length > 0 ? config : undefined));

export const taskSchema = z.object({
  jobId,
  round: counter,
  attempt: uint32,
  version: counter,
  seeds,
  epsilon: finite.refine((x) => x > 0, 'must be positive'),
  batchSize: uint32.min(1, 'must be at least 1'),
  deadlineMs: uint32.min(1, 'must be at least 1'),
  /** Set when the job runs record-level DP (proto-loader gives an unset message field as null). */
  recordPrivacy: z.preprocess((v) => v ?? undefined, recordPrivacySchema.optional()),
  /** Set in a secure-aggregation round (proto-loader gives an unset message field as null). */
  secureAggregation: z.preprocess((v) => v ?? undefined, secureAggregationSpecSchema.optional()),
  /** How the agent turns losses into g (shared/optim/estimator.ts); unset or UNSPECIFIED: central. */
  estimator: z
    .preprocess((v) => v ?? undefined, z.enum(['ESTIMATOR_UNSPECIFIED', 'ESTIMATOR_CENTRAL', 'ESTIMATOR_FORWARD']).optional())
    .transform((k): Estimator | undefined => (k === 'ESTIMATOR_FORWARD' ? 'forward' : k === 'ESTIMATOR_CENTRAL' ? 'central' : undefined))
    .optional(),
  /** The Strategy's config for this agent's task (Strategy.configureTask); absent when it gave none. */
  config: wireTaskConfig.optional(),
});

const termSchema = z.object({ seed, coeff: finite.refine((x) => Number.isFinite(Math.fround(x)), 'must be finite in float32') });

/** EntryKind: unset or UNSPECIFIED (a peer that predates the field) is an update. */
const entryKind = z
  .enum(['ENTRY_KIND_UNSPECIFIED', 'ENTRY_KIND_UPDATE', 'ENTRY_KIND_REBASE'])
  .optional()
  .transform((k): EntryKind => (k === 'ENTRY_KIND_REBASE' ? 'rebase' : 'update'));

export const updateSchema = z
  .object({
    kind: entryKind,
    round: counter,
    version: counter.refine((v) => v >= 1, 'must be at least 1'),
    terms: z.array(termSchema).max(MAX_TERMS_PER_UPDATE, `must hold at most ${MAX_TERMS_PER_UPDATE} terms`),
    lr: finite,
    decay: z.number().refine((d) => d > 0 && d <= 1, 'must be in (0, 1]'),
    prevHash: hex64,
    hash: hex64,
    /** The coordinator's signature of `hash`; empty or absent: unsigned (shared/log/log-signature.ts). */
    signature: z
      .string()
      .optional()
      .transform((sig) => (sig === '' ? undefined : sig))
      .pipe(z.string().regex(/^[0-9a-f]{128}$/, 'must be 128 lowercase hex digits').optional()),
  })
  .transform(({ signature, ...u }) => (signature === undefined ? u : { ...u, signature }))
  .superRefine((u, ctx) => {
    if (u.kind !== 'rebase') return;
    // A rebase record has one canonical form (shared/log/log-entry.ts): no lr or decay, each seed once, ascending.
    if (u.lr !== 0) ctx.addIssue({ code: 'custom', path: ['lr'], message: 'must be 0 in a rebase' });
    if (u.decay !== 1) ctx.addIssue({ code: 'custom', path: ['decay'], message: 'must be 1 in a rebase' });
    for (let k = 1; k < u.terms.length; k++) {
      if (u.terms[k]!.seed <= u.terms[k - 1]!.seed) {
        ctx.addIssue({ code: 'custom', path: ['terms', k, 'seed'], message: 'must be above the previous seed: a rebase lists each seed once, ascending' });
        return;
      }
    }
  });

export const resultSchema = z
  .object({
    round: counter,
    attempt: uint32,
    seeds,
    g: z.array(scalar),
    /** Absent (empty on the wire) in private mode: the agent releases only g. */
    lossPlus: z.array(scalar).optional(),
    lossMinus: z.array(scalar).optional(),
    sampleCount: uint32.min(1, 'must be at least 1'),
  })
  .superRefine((r, ctx) => {
    // Protobuf cannot tell an empty repeated field from an unset one: no losses at all means none were sent.
    const sent = (r.lossPlus?.length ?? 0) > 0 || (r.lossMinus?.length ?? 0) > 0;
    for (const key of ['g', 'lossPlus', 'lossMinus'] as const) {
      const length = r[key]?.length ?? 0;
      if ((key === 'g' || sent) && length !== r.seeds.length) {
        const none = key === 'g' ? '' : ' (or no losses at all, in private mode)';
        ctx.addIssue({ code: 'custom', path: [key], message: `must hold one value per seed (${r.seeds.length}), got ${length}${none}` });
      }
    }
  })
  .transform(({ lossPlus, lossMinus, ...r }): typeof r & { lossPlus?: number[]; lossMinus?: number[] } =>
    (lossPlus?.length ?? 0) > 0 ? { ...r, lossPlus: lossPlus!, lossMinus: lossMinus! } : r,
  );

export const heartbeatSchema = z.object({ version: counter, weightsSha256: hex64, busy: z.boolean().optional() });

/**
 * Why an agent declined a task: its device is busy, the task's batch needs more memory than its budget, or the
 * task's record-level DP is weaker than the agent's floor (shared/privacy/record-dp.ts).
 */
export type DeclineReason = 'busy' | 'memory' | 'privacy';
const DECLINE_REASONS = { DECLINE_REASON_BUSY: 'busy', DECLINE_REASON_MEMORY: 'memory', DECLINE_REASON_PRIVACY: 'privacy' } as const;
const declineReason = z
  .enum(['DECLINE_REASON_UNSPECIFIED', 'DECLINE_REASON_BUSY', 'DECLINE_REASON_MEMORY', 'DECLINE_REASON_PRIVACY'])
  .refine((r) => r !== 'DECLINE_REASON_UNSPECIFIED', 'must be BUSY, MEMORY or PRIVACY')
  .transform((r): DeclineReason => DECLINE_REASONS[r as keyof typeof DECLINE_REASONS]);
export const declineSchema = z.object({ round: counter, attempt: uint32, reason: declineReason });
const nonceSchema = z.object({ nonce: counter });

// ---- secure aggregation (docs/privacy.md, "Secure aggregation") ----

const secAggItem = (dataMax: number) => z.object({ agentId, data: bytesOf(1, dataMax) });
const secAggItems = (dataMax: number) => z.array(secAggItem(dataMax)).max(MAX_SECAGG_PEERS, `must hold at most ${MAX_SECAGG_PEERS} items`);
const word64 = z.union([decimal, z.bigint()]).transform((value, ctx) => {
  const big = BigInt(value);
  if (big < 0n || big >= SEED_LIMIT) {
    ctx.addIssue({ code: 'custom', message: 'must be in [0, 2^64)' });
    return z.NEVER;
  }
  return big;
});
export const secAggKeysSchema = z.object({ round: counter, attempt: uint32, encryptionKey: x25519Key, maskingKey: x25519Key });
export const secAggRosterSchema = z.object({
  round: counter,
  attempt: uint32,
  threshold: uint32.min(1, 'must be at least 1'),
  peers: z
    .array(z.object({ agentId, x: uint32.min(1, 'must be at least 1'), encryptionKey: x25519Key, maskingKey: x25519Key }))
    .min(1, 'must name at least the agent itself')
    .max(MAX_SECAGG_PEERS, `must hold at most ${MAX_SECAGG_PEERS} peers`),
});
/** A sealed share pair: nonce, two 32-byte field elements and a tag, plus room for framing. */
export const secAggSharesSchema = z.object({ round: counter, attempt: uint32, shares: secAggItems(256) });
export const secAggSharesInSchema = secAggSharesSchema;
export const secAggMaskedInputSchema = z
  .object({ round: counter, attempt: uint32, seeds, words: z.array(word64).max(MAX_SEEDS_PER_TASK + 2) })
  .refine((m) => m.words.length === m.seeds.length + 2, { path: ['words'], message: 'must hold one word per seed plus the weight and the loss' });
export const secAggUnmaskSchema = z.object({
  round: counter,
  attempt: uint32,
  survivors: z.array(agentId).max(MAX_SECAGG_PEERS),
  dropped: z.array(agentId).max(MAX_SECAGG_PEERS),
});
export const secAggRevealSchema = z.object({ round: counter, attempt: uint32, selfMaskShares: secAggItems(32), keyShares: secAggItems(32) });

export const fetchLogRequestSchema = z
  .object({ fromVersion: counter, toVersion: counter })
  .refine((r) => r.toVersion === 0 || r.toVersion >= r.fromVersion, { path: ['toVersion'], message: 'must be 0 (the head) or >= fromVersion' });

export const fetchLogResponseSchema = z.object({
  entries: z.array(updateSchema).max(MAX_ENTRIES_PER_PAGE, `must hold at most ${MAX_ENTRIES_PER_PAGE} entries`),
  headVersion: counter,
});

export const fetchSnapshotRequestSchema = z.object({ version: counter });

const chunkData = z
  .custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes')
  .refine((d) => d.length >= 1 && d.length <= MAX_SNAPSHOT_CHUNK_BYTES, `must hold 1 to ${MAX_SNAPSHOT_CHUNK_BYTES} bytes`);

export const snapshotChunkSchema = z
  .object({
    version: counter.refine((v) => v >= 1, 'must be at least 1'),
    entryHash: hex64,
    weightsSha256: hex64,
    totalBytes: counter.refine((n) => n >= 1 && n % 4 === 0, 'must be a positive multiple of 4 (float32 values)'),
    offset: counter,
    data: chunkData,
    /** The log key's signature of the snapshot's identity; empty or absent: unsigned (shared/log/snapshot-signature.ts). */
    signature: z
      .string()
      .optional()
      .transform((sig) => (sig === '' ? undefined : sig))
      .pipe(z.string().regex(/^[0-9a-f]{128}$/, 'must be 128 lowercase hex digits').optional()),
  })
  .refine((c) => c.offset + c.data.length <= c.totalBytes, { path: ['data'], message: 'runs past totalBytes' })
  .transform(({ signature, ...c }): typeof c & { signature?: string } => (signature === undefined ? c : { ...c, signature }));

// ---- typed forms ----

export type Capabilities = z.output<typeof capabilitiesSchema>;
export type JoinRequest = z.output<typeof joinRequestSchema>;
export type JoinAccepted = z.output<typeof joinAcceptedSchema>;
export type Task = z.output<typeof taskSchema>;
/** Why a job ended: all its rounds are logged, or an operator stopped it (a restart on the same log resumes it). */
export type JobEndReason = 'completed' | 'stopped';
export type JobEnd = z.output<typeof jobEndSchema>;
/** A broadcast update is a log entry, field for field. */
export type Update = LogEntry;
export type Result = z.output<typeof resultSchema>;
export type Heartbeat = z.output<typeof heartbeatSchema>;
export type Decline = z.output<typeof declineSchema>;
export type FetchLogRequest = z.output<typeof fetchLogRequestSchema>;
export type FetchSnapshotRequest = z.output<typeof fetchSnapshotRequestSchema>;
export type SnapshotChunk = z.output<typeof snapshotChunkSchema>;
export type SecureAggregationSpec = z.output<typeof secureAggregationSpecSchema>;
export type SecAggKeys = z.output<typeof secAggKeysSchema>;
export type SecAggRoster = z.output<typeof secAggRosterSchema>;
export type SecAggShares = z.output<typeof secAggSharesSchema>;
export type SecAggMaskedInput = z.output<typeof secAggMaskedInputSchema>;
export type SecAggUnmask = z.output<typeof secAggUnmaskSchema>;
export type SecAggReveal = z.output<typeof secAggRevealSchema>;
export interface FetchLogResponse {
  entries: Update[];
  headVersion: number;
}

export type CoordinatorMessage =
  | { kind: 'task'; task: Task }
  | { kind: 'update'; update: Update }
  | { kind: 'ping'; nonce: number }
  | { kind: 'jobEnd'; jobEnd: JobEnd }
  | { kind: 'secAggRoster'; secAggRoster: SecAggRoster }
  | { kind: 'secAggSharesIn'; secAggSharesIn: SecAggShares }
  | { kind: 'secAggUnmask'; secAggUnmask: SecAggUnmask };

export type AgentMessage =
  | { kind: 'result'; result: Result }
  | { kind: 'heartbeat'; heartbeat: Heartbeat }
  | { kind: 'pong'; nonce: number }
  | { kind: 'decline'; decline: Decline }
  | { kind: 'secAggKeys'; secAggKeys: SecAggKeys }
  | { kind: 'secAggShares'; secAggShares: SecAggShares }
  | { kind: 'secAggMaskedInput'; secAggMaskedInput: SecAggMaskedInput }
  | { kind: 'secAggReveal'; secAggReveal: SecAggReveal };

// ---- validation ----

function fieldPath(root: string, path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), root);
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  if (value === null || typeof value !== 'object') throw new MessageValidationError(root, 'must be a message object');
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new MessageValidationError(fieldPath(root, issue.path), issue.message);
  }
  return result.data;
}

export const decodeJoinRequest = (wire: unknown): JoinRequest => parseWith(joinRequestSchema, wire, 'join');
export const decodeJoinAccepted = (wire: unknown): JoinAccepted => parseWith(joinAcceptedSchema, wire, 'joinAccepted');
export const decodeFetchLogRequest = (wire: unknown): FetchLogRequest => parseWith(fetchLogRequestSchema, wire, 'fetchLog');
export const decodeFetchLogResponse = (wire: unknown): FetchLogResponse => parseWith(fetchLogResponseSchema, wire, 'fetchLogResponse');
export const decodeFetchSnapshotRequest = (wire: unknown): FetchSnapshotRequest => parseWith(fetchSnapshotRequestSchema, wire, 'fetchSnapshot');
export const decodeSnapshotChunk = (wire: unknown): SnapshotChunk => parseWith(snapshotChunkSchema, wire, 'snapshotChunk');
export const decodeTask = (wire: unknown): Task => parseWith(taskSchema, wire, 'task');
export const decodeUpdate = (wire: unknown): Update => parseWith(updateSchema, wire, 'update');
export const decodeResult = (wire: unknown): Result => parseWith(resultSchema, wire, 'result');

/** Which member of a oneof is set: the `body` name proto-loader adds, or the only non-null member. */
function oneofMember(wire: Record<string, unknown>, members: readonly string[], root: string): string {
  const named = wire.body;
  if (typeof named === 'string' && members.includes(named) && wire[named] != null) return named;
  const present = members.filter((m) => wire[m] != null);
  if (present.length !== 1) throw new MessageValidationError(`${root}.body`, `must set exactly one of ${members.join(', ')}`);
  return present[0]!;
}

export function decodeCoordinatorMessage(wire: unknown): CoordinatorMessage {
  if (wire === null || typeof wire !== 'object') throw new MessageValidationError('message', 'must be a message object');
  const w = wire as Record<string, unknown>;
  switch (oneofMember(w, ['task', 'update', 'ping', 'jobEnd', 'secAggRoster', 'secAggSharesIn', 'secAggUnmask'], 'message')) {
    case 'task':
      return { kind: 'task', task: parseWith(taskSchema, w.task, 'task') };
    case 'update':
      return { kind: 'update', update: parseWith(updateSchema, w.update, 'update') };
    case 'jobEnd':
      return { kind: 'jobEnd', jobEnd: parseWith(jobEndSchema, w.jobEnd, 'jobEnd') };
    case 'secAggRoster':
      return { kind: 'secAggRoster', secAggRoster: parseWith(secAggRosterSchema, w.secAggRoster, 'secAggRoster') };
    case 'secAggSharesIn':
      return { kind: 'secAggSharesIn', secAggSharesIn: parseWith(secAggSharesInSchema, w.secAggSharesIn, 'secAggSharesIn') };
    case 'secAggUnmask':
      return { kind: 'secAggUnmask', secAggUnmask: parseWith(secAggUnmaskSchema, w.secAggUnmask, 'secAggUnmask') };
    default:
      return { kind: 'ping', nonce: parseWith(nonceSchema, w.ping, 'ping').nonce };
  }
}

export function decodeAgentMessage(wire: unknown): AgentMessage {
  if (wire === null || typeof wire !== 'object') throw new MessageValidationError('message', 'must be a message object');
  const w = wire as Record<string, unknown>;
  switch (oneofMember(w, ['result', 'heartbeat', 'pong', 'decline', 'secAggKeys', 'secAggShares', 'secAggMaskedInput', 'secAggReveal'], 'message')) {
    case 'result':
      return { kind: 'result', result: parseWith(resultSchema, w.result, 'result') };
    case 'heartbeat':
      return { kind: 'heartbeat', heartbeat: parseWith(heartbeatSchema, w.heartbeat, 'heartbeat') };
    case 'decline':
      return { kind: 'decline', decline: parseWith(declineSchema, w.decline, 'decline') };
    case 'secAggKeys':
      return { kind: 'secAggKeys', secAggKeys: parseWith(secAggKeysSchema, w.secAggKeys, 'secAggKeys') };
    case 'secAggShares':
      return { kind: 'secAggShares', secAggShares: parseWith(secAggSharesSchema, w.secAggShares, 'secAggShares') };
    case 'secAggMaskedInput':
      return { kind: 'secAggMaskedInput', secAggMaskedInput: parseWith(secAggMaskedInputSchema, w.secAggMaskedInput, 'secAggMaskedInput') };
    case 'secAggReveal':
      return { kind: 'secAggReveal', secAggReveal: parseWith(secAggRevealSchema, w.secAggReveal, 'secAggReveal') };
    default:
      return { kind: 'pong', nonce: parseWith(nonceSchema, w.pong, 'pong').nonce };
  }
}

// ---- encoding (typed form -> wire form) ----

const u64 = (n: number | bigint): string => n.toString();
const wireDistribution = (d: Distribution): string => d.toUpperCase();

export function encodeJoinRequest(m: JoinRequest): Record<string, unknown> {
  return {
    agentId: m.agentId,
    token: m.token,
    capabilities: {
      memoryBytes: u64(m.capabilities.memoryBytes),
      cores: m.capabilities.cores,
      noiseImpl: m.capabilities.noiseImpl,
      // Left out when unset, so a decode of the encoding gives back what was encoded (protobuf sends 0/false).
      ...(m.capabilities.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: u64(m.capabilities.memoryBudgetBytes) } : {}),
      ...(m.capabilities.threads !== undefined ? { threads: m.capabilities.threads } : {}),
      ...(m.capabilities.busy !== undefined ? { busy: m.capabilities.busy } : {}),
    },
    baseSha256: m.baseSha256,
    versionHeld: u64(m.versionHeld),
  };
}

export function encodeJoinAccepted(m: JoinAccepted): Record<string, unknown> {
  return {
    jobId: m.jobId,
    distribution: wireDistribution(m.distribution),
    ...(m.rank !== undefined ? { rank: m.rank } : {}),
    epsilon: m.epsilon,
    baseSha256: m.baseSha256,
    currentVersion: u64(m.currentVersion),
    headHash: m.headHash,
    genesisHash: m.genesisHash,
    decayRanges: m.decayRanges.map(([start, end]) => ({ start: u64(start), end: u64(end) })),
    heartbeatMs: m.heartbeatMs,
    snapshotVersion: u64(m.snapshotVersion),
    snapshotBytes: u64(m.snapshotBytes),
    logBytes: u64(m.logBytes),
    logBytesAfterSnapshot: u64(m.logBytesAfterSnapshot),
    logFloor: u64(m.logFloor),
    ...(m.rebaseVersion ? { rebaseVersion: u64(m.rebaseVersion) } : {}),
    ...(m.compactEvery ? { compactEvery: m.compactEvery } : {}),
    ...(m.jobEnd ? { jobEnd: encodeJobEnd(m.jobEnd) } : {}),
    ...(m.logPublicKey ? { logPublicKey: m.logPublicKey } : {}),
  };
}

export const encodeJobEnd = (e: JobEnd): Record<string, unknown> => ({
  jobId: e.jobId,
  reason: e.reason === 'completed' ? 'JOB_END_REASON_COMPLETED' : 'JOB_END_REASON_STOPPED',
  version: u64(e.version),
  headHash: e.headHash,
});

export function encodeTask(t: Task): Record<string, unknown> {
  return {
    jobId: t.jobId,
    round: u64(t.round),
    attempt: t.attempt,
    version: u64(t.version),
    seeds: t.seeds.map(u64),
    epsilon: t.epsilon,
    batchSize: t.batchSize,
    deadlineMs: t.deadlineMs,
    ...(t.recordPrivacy ? { recordPrivacy: { ...t.recordPrivacy } } : {}),
    ...(t.secureAggregation ? { secureAggregation: { ...t.secureAggregation } } : {}),
    ...(t.estimator ? { estimator: t.estimator === 'forward' ? 'ESTIMATOR_FORWARD' : 'ESTIMATOR_CENTRAL' } : {}),
    // Left unset without one, so such tasks keep the bytes they had before the field existed.
    ...(t.config && Object.keys(t.config).length > 0 ? { config: encodeTaskConfig(t.config) } : {}),
  };
}

/** Each value as the ConfigValue member its type names. */
function encodeTaskConfig(config: TaskConfig): Record<string, object> {
  return Object.fromEntries(
    Object.entries(config).map(([key, v]) => [key, typeof v === 'string' ? { stringValue: v } : typeof v === 'number' ? { numberValue: v } : { boolValue: v }]),
  );
}

// Secure aggregation's messages: bytes pass as they are, 64-bit words as decimal strings.
const encodeItems = (items: ReadonlyArray<{ agentId: string; data: Uint8Array }>) => items.map((i) => ({ agentId: i.agentId, data: i.data }));
const encodeSecAggKeys = (m: SecAggKeys) => ({ round: u64(m.round), attempt: m.attempt, encryptionKey: m.encryptionKey, maskingKey: m.maskingKey });
const encodeSecAggRoster = (m: SecAggRoster) => ({
  round: u64(m.round),
  attempt: m.attempt,
  threshold: m.threshold,
  peers: m.peers.map((p) => ({ agentId: p.agentId, x: p.x, encryptionKey: p.encryptionKey, maskingKey: p.maskingKey })),
});
const encodeSecAggShares = (m: SecAggShares) => ({ round: u64(m.round), attempt: m.attempt, shares: encodeItems(m.shares) });
const encodeSecAggMaskedInput = (m: SecAggMaskedInput) => ({ round: u64(m.round), attempt: m.attempt, seeds: m.seeds.map(u64), words: m.words.map(u64) });
const encodeSecAggUnmask = (m: SecAggUnmask) => ({ round: u64(m.round), attempt: m.attempt, survivors: [...m.survivors], dropped: [...m.dropped] });
const encodeSecAggReveal = (m: SecAggReveal) => ({ round: u64(m.round), attempt: m.attempt, selfMaskShares: encodeItems(m.selfMaskShares), keyShares: encodeItems(m.keyShares) });

export function encodeUpdate(u: Update): Record<string, unknown> {
  return {
    // Left unset for an update, so update messages keep the bytes they had before the field existed.
    ...(u.kind === 'rebase' ? { kind: 'ENTRY_KIND_REBASE' } : {}),
    round: u64(u.round),
    version: u64(u.version),
    terms: u.terms.map((t) => ({ seed: u64(t.seed), coeff: t.coeff })),
    lr: u.lr,
    decay: u.decay,
    prevHash: u.prevHash,
    hash: u.hash,
    ...(u.signature !== undefined ? { signature: u.signature } : {}),
  };
}

export function encodeResult(r: Result): Record<string, unknown> {
  return {
    round: u64(r.round),
    attempt: r.attempt,
    seeds: r.seeds.map(u64),
    g: [...r.g],
    // Left out in private mode, so nothing but g and the sample count is on the wire.
    ...(r.lossPlus !== undefined ? { lossPlus: [...r.lossPlus] } : {}),
    ...(r.lossMinus !== undefined ? { lossMinus: [...r.lossMinus] } : {}),
    sampleCount: r.sampleCount,
  };
}

export const encodeFetchLogRequest = (r: FetchLogRequest): Record<string, unknown> => ({
  fromVersion: u64(r.fromVersion),
  toVersion: u64(r.toVersion),
});

export const encodeFetchLogResponse = (r: FetchLogResponse): Record<string, unknown> => ({
  entries: r.entries.map(encodeUpdate),
  headVersion: u64(r.headVersion),
});

export const encodeFetchSnapshotRequest = (r: FetchSnapshotRequest): Record<string, unknown> => ({ version: u64(r.version) });

export const encodeSnapshotChunk = (c: SnapshotChunk): Record<string, unknown> => ({
  version: u64(c.version),
  entryHash: c.entryHash,
  weightsSha256: c.weightsSha256,
  totalBytes: u64(c.totalBytes),
  offset: u64(c.offset),
  data: c.data,
  ...(c.signature !== undefined ? { signature: c.signature } : {}),
});

export function encodeCoordinatorMessage(m: CoordinatorMessage): Record<string, unknown> {
  switch (m.kind) {
    case 'task':
      return { task: encodeTask(m.task) };
    case 'update':
      return { update: encodeUpdate(m.update) };
    case 'ping':
      return { ping: { nonce: u64(m.nonce) } };
    case 'jobEnd':
      return { jobEnd: encodeJobEnd(m.jobEnd) };
    case 'secAggRoster':
      return { secAggRoster: encodeSecAggRoster(m.secAggRoster) };
    case 'secAggSharesIn':
      return { secAggSharesIn: encodeSecAggShares(m.secAggSharesIn) };
    case 'secAggUnmask':
      return { secAggUnmask: encodeSecAggUnmask(m.secAggUnmask) };
  }
}

export function encodeAgentMessage(m: AgentMessage): Record<string, unknown> {
  switch (m.kind) {
    case 'result':
      return { result: encodeResult(m.result) };
    case 'heartbeat':
      return { heartbeat: { version: u64(m.heartbeat.version), weightsSha256: m.heartbeat.weightsSha256, ...(m.heartbeat.busy !== undefined ? { busy: m.heartbeat.busy } : {}) } };
    case 'pong':
      return { pong: { nonce: u64(m.nonce) } };
    case 'decline':
      return { decline: { round: u64(m.decline.round), attempt: m.decline.attempt, reason: `DECLINE_REASON_${m.decline.reason.toUpperCase()}` } };
    case 'secAggKeys':
      return { secAggKeys: encodeSecAggKeys(m.secAggKeys) };
    case 'secAggShares':
      return { secAggShares: encodeSecAggShares(m.secAggShares) };
    case 'secAggMaskedInput':
      return { secAggMaskedInput: encodeSecAggMaskedInput(m.secAggMaskedInput) };
    case 'secAggReveal':
      return { secAggReveal: encodeSecAggReveal(m.secAggReveal) };
  }
}

/** Checks an agent id from call metadata (Session, FetchLog). */
export function checkAgentId(value: unknown, field = 'metadata.x-mezo-agent-id'): string {
  const result = agentId.safeParse(value);
  if (!result.success) throw new MessageValidationError(field, result.error.issues[0]!.message);
  return result.data;
}
