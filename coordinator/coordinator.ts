/**
 * The coordinator: serves agents over a Transport and runs ONE round loop.
 *
 * A round: sample agents and assign seeds (the Strategy), send each a Task, collect Results until the quorum is
 * reached, every asked agent has answered, the quorum has become unreachable, or the deadline passes. Every
 * Result is validated (right round and attempt, the assigned seeds in order, finite and bounded scalars, g
 * consistent with the losses, no duplicate) and rejections are counted per agent. With a quorum the Strategy
 * aggregates the results, the update is appended to the durable UpdateLog (the append resolves after
 * fdatasync), and only then is it broadcast. Without one the round is retried with fresh seeds, up to
 * maxAttempts. Reopening the same log resumes at the round after its last entry.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { slabSha256 } from '../shared/model/index.js';
import type { NoiseEngine } from '../shared/noise/engine.js';
import type { LowRankLayout } from '../shared/noise/index.js';
import type { UpdateLog } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import {
  MAX_ENTRIES_PER_PAGE,
  TransportError,
  type AgentMessage,
  type Capabilities,
  type CallInfo,
  type CoordinatorHandler,
  type Decline,
  type FetchLogRequest,
  type FetchLogResponse,
  type FetchSnapshotRequest,
  type JobEnd,
  type JobEndReason,
  type JoinAccepted,
  type JoinRequest,
  type Listener,
  type Result,
  type SecureAggregationSpec,
  type ServerSession,
  type SnapshotChunk,
  type Traffic,
  type Transport,
} from '../shared/transport/index.js';
import { ServiceHealth } from '../shared/transport/health.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import { maxAbsRecordDpG } from '../shared/privacy/record-dp.js';
import { parseRoundOptions, type RoundOptions, type RoundOptionsInput } from './options.js';
import { MezoStrategy, type AgentResult, type AggregatedUpdate, type Assignment, type RoundContext, type Strategy } from './strategy.js';
import type { SnapshotScan } from './snapshot.js';
import { Replica, type SnapshotSettings } from './replica.js';
import { Broadcaster } from './broadcaster.js';
import { secureSpec } from '../shared/privacy/secure-sum.js';
import {
  SecureAggregationConfigError,
  SecureRound,
  secureAggregationOptionsSchema,
  secureAggregationTarget,
  type SecureAggregationOptions,
  type SecureAggregationOptionsInput,
  type SecureAggregationTarget,
} from './secure-aggregation.js';

/** Why results were rejected; each counts against the agent that sent it. */
export type RejectionReason =
  | 'invalid-message'
  | 'wrong-round'
  | 'not-assigned'
  | 'duplicate'
  | 'wrong-seeds'
  | 'bad-sample-count'
  | 'out-of-bounds'
  | 'inconsistent-g'
  /** A secure-aggregation message that breaks the protocol (or a plain Result in a secure job). */
  | 'secure-aggregation'
  /** A private-mode job's result carried losses, or another job's lacked them. */
  | 'losses-in-private-mode'
  | 'missing-losses';

export interface AgentStats {
  /** Tasks sent. */
  tasks: number;
  /** Results used in a round. */
  accepted: number;
  /** Results that came after their round closed (dropped). */
  late: number;
  /** Tasks whose agent disconnected before answering. */
  dropped: number;
  /** Results (or messages) rejected, in total and by reason. */
  rejected: number;
  rejections: Partial<Record<RejectionReason, number>>;
  /** Heartbeats whose weights hash differed from the coordinator's at the same version. */
  divergent: number;
  /** Calls refused and sessions ended because the agent exceeded its message budget (options.rateLimit). */
  rateLimited: number;
  /** Tasks the agent declined (its device busy, or the batch over its memory budget): not faults. */
  declined: number;
}

export interface AgentStatus {
  id: string;
  connected: boolean;
  capabilities: Capabilities;
  /** Newest version the agent is known to hold (join, heartbeat, or a task it answered at that version). */
  version: number;
  /** The weights hash of the last heartbeat, and the version it was computed at. */
  weightsSha256: string | undefined;
  weightsVersion: number | undefined;
  stats: AgentStats;
}

export interface RoundReport {
  round: number;
  /** Attempt that succeeded (0 for a first try). */
  attempt: number;
  version: number;
  hash: string;
  /** Agents sent a task in the committed attempt. */
  asked: number;
  /** Results merged (the agents that answered in time). */
  results: number;
  /** Agents asked in the committed attempt that disconnected (or could not be sent the task) before answering. */
  dropped: number;
  /** Agents with an open session when the round committed. */
  connected: number;
  lr: number;
  trainLoss: number;
  wallMs: number;
  /** The merged results' scalars, per agent (for dashboards: histograms, sign agreement). */
  scalars: ReadonlyArray<{ agentId: string; seeds: readonly bigint[]; g: readonly number[] }>;
  /** The committed entry's (seed, coefficient) terms. */
  terms: ReadonlyArray<{ seed: bigint; coeff: number }>;
}

export interface RunReport {
  roundsRun: number;
  version: number;
  headHash: string;
  failedAttempts: number;
  /** True when stop() ended the run before its last round. */
  stopped: boolean;
}

export class RoundFailedError extends Error {
  override name = 'RoundFailedError';
}

export interface CoordinatorInit {
  log: UpdateLog;
  /** The base weights the log's entries apply to (its SHA-256 must match the log header). */
  baseSlab: Float32Array;
  /** The slab's padding (paddingRanges of the model's layout), which agents keep at zero; default none. */
  padding?: ReadonlyArray<readonly [number, number]>;
  /**
   * The model's low-rank layout (noiseModeFor(options, manifest.tensors)): required when the log's distribution
   * is 'lowrank', since every replay of the log needs it.
   */
  lowRank?: LowRankLayout;
  engine: NoiseEngine;
  transport: Transport;
  options: RoundOptionsInput;
  /** Default: a MezoStrategy built from options.strategy. */
  strategy?: Strategy;
  onRound?: (report: RoundReport) => void;
  /**
   * Snapshots of the materialised weights (snapshot.ts): one every `every` committed versions, the newest `keep`
   * (default 2) kept in `dir`. listen() restores from the newest valid one and replays only the log after it
   * (and writes one at the head when the newest is `every` or more versions behind). Agents far behind download
   * the newest with FetchSnapshot, in chunks of `chunkBytes` (default and at most 1 MiB).
   *
   * `keepVersions` bounds what FetchLog serves: entries after max(0, min(head − keepVersions, newest snapshot
   * version)); an agent holding less catches up by snapshot. Unset: the whole log is served. The log file itself
   * always stays whole (it is the durable record and what a restart verifies).
   */
  snapshots?: SnapshotSettings;
  /**
   * Secure aggregation of the scalars (secure-aggregation.ts, docs/privacy.md): every round runs the masked,
   * multi-phase protocol and the coordinator learns only the sum of the answers. A strategy that needs each
   * agent's values (median, trimmed mean, distinct or pool seeds) is refused with SecureAggregationConfigError.
   */
  secureAggregation?: SecureAggregationOptionsInput;
}

interface AgentRecord {
  id: string;
  token: string;
  capabilities: Capabilities;
  session: ServerSession | undefined;
  version: number;
  weightsSha256: string | undefined;
  weightsVersion: number | undefined;
  /**
   * Pings sent since the agent's last message. Liveness is counted in the coordinator's own heartbeat ticks,
   * not in wall time: a stalled coordinator (starved of CPU, collecting garbage, busy on its thread) fires one
   * late tick and reads the agents' pending messages only after its timers, so wall-clock silence would blame
   * the agents for the coordinator's own stall.
   */
  missedPings: number;
  /** Nonce of the last ping sent and not yet answered: its pong is solicited, so it costs no message budget. */
  pingNonce?: number;
  stats: AgentStats;
  /** Token bucket of options.rateLimit. */
  budget: { tokens: number; at: number };
  /** Highest log version sent on the current session. */
  sentVersion: number;
  /** The head reported to the agent's last Join: it catches up to there by itself before opening a session. */
  joinedAtVersion: number;
}

/** One attempt of one round, while its results come in. */
class OpenRound {
  readonly results = new Map<string, AgentResult>();
  readonly gone = new Set<string>();
  /** Assigned agents that declined their task: the round does not wait for them. */
  readonly declined = new Set<string>();
  readonly done: Promise<void>;
  private finish!: () => void;
  private timer: NodeJS.Timeout;
  settled = false;

  constructor(
    readonly round: number,
    readonly attempt: number,
    readonly version: number,
    readonly assigned: Map<string, bigint[]>,
    readonly quorum: number,
    deadlineMs: number,
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.timer = setTimeout(() => this.settle(), deadlineMs);
  }

  settle(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.finish();
  }

  /** Closes the round as soon as its outcome is decided. */
  check(): void {
    const pending = this.assigned.size - this.results.size - this.gone.size - this.declined.size;
    if (this.results.size >= this.quorum || pending === 0 || this.results.size + pending < this.quorum) this.settle();
  }
}

const newStats = (): AgentStats => ({ tasks: 0, accepted: 0, late: 0, dropped: 0, rejected: 0, rejections: {}, divergent: 0, rateLimited: 0, declined: 0 });

/** Compares secrets in time independent of where they differ (digests first, so lengths leak nothing either). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
export class Coordinator {
  readonly log: UpdateLog;
  readonly options: RoundOptions;
  readonly strategy: Strategy;
  private readonly transport: Transport;
  private readonly replica: Replica;
  private readonly roundListeners = new Set<(report: RoundReport) => void>();
  private readonly agents = new Map<string, AgentRecord>();
  private readonly revoked = new Set<string>();
  private listener: Listener | undefined;
  /**
   * What every health check answers (gRPC health, the NATS health subject, /readyz): NOT_SERVING until the
   * listener is up, SERVING while it serves, NOT_SERVING from the moment close() begins.
   */
  readonly health = new ServiceHealth('NOT_SERVING');
  private open: OpenRound | undefined;
  /** With init.secureAggregation: its options and the strategy's sum side. */
  private readonly secure: { options: SecureAggregationOptions; target: SecureAggregationTarget } | undefined;
  /** The secure round in progress: its phases take the agents' secure-aggregation messages. */
  private secureRound: SecureRound | undefined;
  private stopping = false;
  /** stop({ endJob: true }) asked for the job to end: agents hear it once the loop is out of its round. */
  private endRequested = false;
  /** Set once the job has ended (every round logged, or ended by the operator); told to every agent. */
  private ended: JobEnd | undefined;
  private running: Promise<RunReport> | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  private readonly broadcaster: Broadcaster;
  private nonce = 0;
  private readonly authLimiter: AuthFailureLimiter;
  private authFailed = 0;

  constructor(init: CoordinatorInit) {
    this.options = parseRoundOptions(init.options);
    this.authLimiter = new AuthFailureLimiter(this.options.authFailureLimit);
    this.log = init.log;
    this.transport = init.transport;
    this.broadcaster = new Broadcaster(this.log, this.options.broadcastIntervalMs, () => this.agents.values());
    if (init.onRound) this.roundListeners.add(init.onRound);
    this.strategy = init.strategy ?? new MezoStrategy(this.options.strategy);
    const size = this.strategy.agentsPerRound;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 1)) {
      throw new RangeError(`coordinator: strategy.agentsPerRound must be a positive integer, got ${String(size)}`);
    }
    if (init.secureAggregation) {
      const parsed = secureAggregationOptionsSchema.safeParse(init.secureAggregation);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new SecureAggregationConfigError(`secureAggregation.${issue.path.join('.')}: ${issue.message}`);
      }
      if (parsed.data.enabled) this.secure = { options: parsed.data, target: secureAggregationTarget(this.strategy) };
    }
    this.replica = new Replica({
      log: init.log,
      baseSlab: init.baseSlab,
      padding: init.padding ?? [],
      lowRank: init.lowRank,
      engine: init.engine,
      options: this.options,
      snapshots: init.snapshots,
    });
  }

  /** What listen() found in the snapshot directory (undefined without snapshots). */
  get snapshotScan(): SnapshotScan | undefined {
    return this.replica.snapshotScan;
  }

  /**
   * FetchLog serves entries with version > this floor (snapshots.keepVersions; 0 when unbounded). An agent
   * below it starts from the newest snapshot or from the last rebase record, so the floor never passes both.
   */
  logFloor(): number {
    return this.replica.logFloor();
  }

  /** Versions of the snapshots agents can fetch now, oldest first. */
  fetchableSnapshots(): number[] {
    return this.replica.fetchableSnapshots();
  }

  /** Resolves once every snapshot queued so far is written (or failed). */
  snapshotsWritten(): Promise<void> {
    return this.replica.snapshotsWritten();
  }

  /** The round the loop runs next: the one after the log's last entry. */
  get nextRound(): number {
    const last = this.log.version > 0 ? this.log.entries(this.log.version - 1)[0]! : undefined;
    return last ? last.round + 1 : 0;
  }

  get address(): string | undefined {
    return this.listener?.address;
  }

  /** Calls `listener` after every committed round (besides init.onRound); returns its unsubscribe. */
  onRound(listener: (report: RoundReport) => void): () => void {
    this.roundListeners.add(listener);
    return () => this.roundListeners.delete(listener);
  }

  /**
   * Refused callers, in totals only (no state per caller): calls that failed authentication, calls refused
   * unheard because their address was over its failure budget, addresses tracked by that limit (bounded), and
   * the bytes of every refused call as the transport counted them.
   */
  authFailures(): { failed: number; limited: number; peersTracked: number; refusedCalls: number; refusedBytes: number } {
    const refused = this.listener?.refused?.() ?? { calls: 0, bytesUp: 0 };
    return { failed: this.authFailed, limited: this.authLimiter.refused, peersTracked: this.authLimiter.size, refusedCalls: refused.calls, refusedBytes: refused.bytesUp };
  }

  /** Session messages the transport dropped as forged or replayed, in total (0 where it checks none, or not listening). */
  forgedMessages(): number {
    return this.listener?.forged?.() ?? 0;
  }

  /** Encoded bytes moved per agent id since listen() (empty when not listening). */
  traffic(): ReadonlyMap<string, Traffic> {
    return this.listener?.traffic() ?? new Map();
  }

  /** SHA-256 of the materialised weights at `version`, while it is among the recent versions kept for audits. */
  weightsSha256At(version: number): string | undefined {
    return this.replica.weightsSha256At(version);
  }

  /** base + replay(log): the model the log describes, bit for bit. Kept up to date as rounds commit. */
  materialise(): Float32Array {
    return this.replica.materialise();
  }

  /** SHA-256 of the materialised weights at the log head. */
  weightsSha256(): string {
    return slabSha256(this.materialise());
  }

  agentStatus(id: string): AgentStatus | undefined {
    const a = this.agents.get(id);
    if (!a) return undefined;
    return {
      id: a.id,
      connected: a.session !== undefined,
      capabilities: { ...a.capabilities },
      version: a.version,
      weightsSha256: a.weightsSha256,
      weightsVersion: a.weightsVersion,
      // A copy (callers may keep it), made field by field: monitors read every agent's status each round.
      stats: { ...a.stats, rejections: { ...a.stats.rejections } },
    };
  }

  agentStatuses(): AgentStatus[] {
    return [...this.agents.keys()].sort().map((id) => this.agentStatus(id)!);
  }

  connectedAgents(): string[] {
    return [...this.agents.values()].filter((a) => a.session).map((a) => a.id).sort();
  }

  /** Starts serving agents. */
  async listen(): Promise<string> {
    if (this.listener) return this.listener.address;
    await this.replica.restore();
    this.listener = await this.transport.listen(this.handler());
    this.health.set('SERVING');
    this.pinger = setInterval(() => this.pingAll(), this.options.heartbeatMs);
    this.pinger.unref();
    logger.info({ address: this.listener.address, jobId: this.options.jobId, version: this.log.version }, 'coordinator listening');
    return this.listener.address;
  }

  /** Runs rounds until options.rounds are in the log or stop() is called. Rejects with RoundFailedError. */
  run(): Promise<RunReport> {
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Stops scheduling and abandons the open round (its results are dropped). run() then resolves. Agents are told
   * nothing and reconnect, as after a crash, unless `endJob`: then, once no entry can be appended any more, every
   * agent hears that the job ended (reason 'stopped') and leaves, or waits for the next job.
   */
  stop(options: { endJob?: boolean } = {}): void {
    this.stopping = true;
    if (options.endJob) {
      this.endRequested = true;
      if (!this.running) this.announceEnd('stopped');
    }
    this.open?.settle();
    this.secureRound?.abort();
    this.notify();
  }

  /** How the job ended, once it has (every round in the log, or stop({ endJob: true })). */
  get jobEnd(): JobEnd | undefined {
    return this.ended;
  }

  /** The job has ended, or its log already holds every round: a Join is told so instead of being given work. */
  private endOfJob(): JobEnd | undefined {
    if (this.ended) return this.ended;
    if (this.nextRound < this.options.rounds) return undefined;
    return { jobId: this.options.jobId, reason: 'completed', version: this.log.version, headHash: this.log.headHash };
  }

  /**
   * Tells every connected agent that the job ended, after every update it has not been sent yet; sessions opened
   * later hear it at once. Sessions stay open: an agent that leaves ends its own, one that waits for the next job
   * stays until the coordinator goes away. Called when the loop is done appending.
   */
  private announceEnd(reason: JobEndReason): void {
    if (this.ended) return;
    this.ended = { jobId: this.options.jobId, reason, version: this.log.version, headHash: this.log.headHash };
    logger.info({ ...this.ended }, 'job ended; telling the agents');
    this.broadcaster.announceEnd(this.ended);
  }

  /** stop(), wait for the loop, close every stream and the listener, then the log (pending appends flushed). */
  async close(graceMs = 2000): Promise<void> {
    this.health.set('NOT_SERVING');
    this.stop();
    await this.running?.catch(() => undefined);
    this.broadcaster.flush();
    if (this.pinger) clearInterval(this.pinger);
    await this.listener?.close(graceMs);
    this.listener = undefined;
    await this.replica.snapshotsWritten();
    await this.log.close();
  }

  // ---- the round loop ----

  private async loop(): Promise<RunReport> {
    this.stopping = false;
    let roundsRun = 0;
    let failedAttempts = 0;
    while (!this.stopping && this.nextRound < this.options.rounds) {
      const round = this.nextRound;
      let committed = false;
      for (let attempt = 0; attempt < this.options.maxAttempts && !this.stopping; attempt++) {
        const outcome = await this.attemptRound(round, attempt);
        if (outcome === 'committed') {
          committed = true;
          break;
        }
        if (outcome === 'failed') failedAttempts++;
      }
      // A round that committed counts even when a round listener asked to stop during it.
      if (committed) roundsRun++;
      if (this.stopping) break;
      if (!committed) {
        throw new RoundFailedError(`round ${round}: no quorum after ${this.options.maxAttempts} attempts`);
      }
    }
    // Nothing more will be appended: a job with every round logged, or ended by the operator, tells its agents.
    if (this.nextRound >= this.options.rounds) this.announceEnd('completed');
    else if (this.endRequested) this.announceEnd('stopped');
    return { roundsRun, version: this.log.version, headHash: this.log.headHash, failedAttempts, stopped: this.stopping };
  }

  /** Agents a round asks for: the Strategy object's own size when it states one (not options.strategy's). */
  private get agentsPerRound(): number {
    return this.strategy.agentsPerRound ?? this.options.strategy.agentsPerRound;
  }

  private quorumFor(asked: number): number {
    return Math.min(this.options.quorum ?? this.agentsPerRound, asked);
  }

  private async attemptRound(round: number, attempt: number): Promise<'committed' | 'failed' | 'stopped'> {
    const started = performance.now();
    const needed = this.options.quorum ?? this.agentsPerRound;
    const connected = await this.waitForAgents(needed, this.options.waitForAgentsMs);
    if (this.stopping) return 'stopped';
    if (connected.length < needed) {
      logger.warn({ round, attempt, connected: connected.length, needed }, 'too few agents connected; attempt failed');
      return 'failed';
    }
    const version = this.log.version;
    const context = { round, attempt, version };
    const assignments: Assignment[] = this.strategy.configureRound(
      context,
      connected.map((a) => ({ id: a.id, capabilities: a.capabilities })),
    );
    const sendable = assignments.filter((a) => this.agents.get(a.agentId)?.session && a.seeds.length > 0);
    const quorum = this.quorumFor(sendable.length);
    if (sendable.length === 0 || sendable.length < needed) {
      logger.warn({ round, attempt, assigned: sendable.length, needed }, 'strategy assigned too few agents; attempt failed');
      return 'failed';
    }
    const open = new OpenRound(round, attempt, version, new Map(sendable.map((a) => [a.agentId, a.seeds])), quorum, this.options.deadlineMs);
    this.open = open;
    const recordDp = this.options.recordDp;
    const spec = this.secure
      ? secureSpec({ participants: sendable.length, batchSize: this.options.batchSize, maxAbsG: this.options.maxAbsG, ...this.secure.target })
      : undefined;
    for (const { agentId, seeds } of sendable) {
      const agent = this.agents.get(agentId)!;
      agent.stats.tasks++;
      this.broadcaster.deliverPending(agent);
      const sent = agent.session!.send({
        kind: 'task',
        task: {
          jobId: this.options.jobId,
          round,
          attempt,
          version,
          seeds,
          epsilon: this.options.epsilon,
          batchSize: this.options.batchSize,
          deadlineMs: this.options.deadlineMs,
          ...(recordDp ? { recordPrivacy: { clip: recordDp.clip, noiseMultiplier: recordDp.noiseMultiplier, privateMode: recordDp.private } } : {}),
          ...(spec ? { secureAggregation: spec } : {}),
        },
      });
      if (!sent) open.gone.add(agentId);
    }
    if (spec) return this.finishSecureRound(open, context, sendable, spec, started);
    open.check();
    await open.done;
    this.open = undefined;
    for (const agentId of open.gone) this.agents.get(agentId)!.stats.dropped++;
    if (this.stopping) return 'stopped';
    if (open.results.size < quorum) {
      logger.warn({ round, attempt, results: open.results.size, quorum }, 'round closed without quorum; retrying with fresh seeds');
      return 'failed';
    }
    const results = [...open.results.values()];
    const update = this.strategy.aggregate(context, results);
    if (!update || update.terms.length === 0) return 'failed';
    const scalars = results.map(({ agentId, seeds, g }) => ({ agentId, seeds, g }));
    return this.commitRound(context, update, { accepted: results.map((r) => r.agentId), asked: sendable.length, dropped: open.gone.size, scalars, started });
  }

  /**
   * The rest of a secure round (secure-aggregation.ts): its four phases replace collecting Results, and only the
   * unmasked sum reaches the strategy. A failure (too few survivors, fewer than t shares of a secret) fails the
   * attempt, which is retried with fresh seeds like a round without quorum.
   */
  private async finishSecureRound(open: OpenRound, context: RoundContext, sendable: readonly Assignment[], spec: SecureAggregationSpec, started: number): Promise<'committed' | 'failed' | 'stopped'> {
    const { round, attempt } = context;
    const seeds = sendable[0]!.seeds;
    const secure = new SecureRound({
      jobId: this.options.jobId,
      round,
      attempt,
      seeds,
      assigned: sendable.map((a) => a.agentId),
      quorum: open.quorum,
      spec,
      options: this.secure!.options,
      graphSeed: this.options.strategy.seed,
      phaseMs: this.options.deadlineMs,
      send: (agentId, message) => this.agents.get(agentId)?.session?.send(message) ?? false,
    });
    this.secureRound = secure;
    for (const agentId of [...open.gone, ...open.declined]) secure.drop(agentId);
    const outcome = sendable.every((a) => a.seeds.length === seeds.length && a.seeds.every((s, i) => s === seeds[i]))
      ? await secure.run()
      : ({ ok: false, reason: 'the strategy gave the agents different seeds', stopped: false } as const);
    this.secureRound = undefined;
    open.settle();
    this.open = undefined;
    for (const agentId of open.gone) this.agents.get(agentId)!.stats.dropped++;
    if (this.stopping) return 'stopped';
    if (!outcome.ok) {
      logger.warn({ round, attempt, reason: outcome.reason }, 'secure aggregation failed; retrying with fresh seeds');
      return 'failed';
    }
    const update = this.secure!.target.aggregate(context, outcome.sums);
    if (!update || update.terms.length === 0) return 'failed';
    const dropped = sendable.length - outcome.survivors.length - open.declined.size;
    return this.commitRound(context, update, { accepted: outcome.survivors, asked: sendable.length, dropped, scalars: [], started });
  }

  /** Appends a round's update (durable first), then broadcasts it and reports the round to its listeners. */
  private async commitRound(
    context: RoundContext,
    update: AggregatedUpdate,
    answers: { accepted: readonly string[]; asked: number; dropped: number; scalars: RoundReport['scalars']; started: number },
  ): Promise<'committed'> {
    const { round, attempt } = context;
    const { started } = answers;
    // Durable first: the entry is on stable storage before any agent hears of it.
    const entry = await this.log.append({ round, lr: update.lr, decay: update.decay, terms: update.terms });
    for (const agentId of answers.accepted) this.agents.get(agentId)!.stats.accepted++;
    this.replica.committed(entry);
    this.broadcaster.broadcast(entry);
    await this.replica.maybeCompact(round, (rebase) => this.broadcaster.broadcast(rebase));
    const report: RoundReport = {
      round,
      attempt,
      version: entry.version,
      hash: entry.hash,
      asked: answers.asked,
      results: answers.accepted.length,
      dropped: answers.dropped,
      connected: this.connectedAgents().length,
      lr: update.lr,
      trainLoss: update.trainLoss,
      wallMs: performance.now() - started,
      scalars: answers.scalars,
      terms: entry.terms,
    };
    const { scalars: _scalars, terms: _terms, ...summary } = report;
    logger.info(summary, 'round committed');
    for (const listener of this.roundListeners) {
      // An observer's failure (a dashboard, a metrics sink) must not fail the round that already committed.
      try {
        listener(report);
      } catch (err) {
        logger.warn({ round, err: (err as Error).message }, 'a round listener threw');
      }
    }
    return 'committed';
  }

  private notify(): void {
    const waiting = this.waiters;
    this.waiters = [];
    waiting.forEach((wake) => wake());
  }

  /** Connected agents that are not busy, once at least `count` are (or when timeoutMs passes, or on stop). */
  private async waitForAgents(count: number, timeoutMs: number): Promise<AgentRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A busy agent (its device paused) would only decline: wait for agents that can take a task.
      const connected = [...this.agents.values()].filter((a) => a.session && !a.capabilities.busy);
      const left = deadline - Date.now();
      if (connected.length >= count || left <= 0 || this.stopping) return connected;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private pingAll(): void {
    for (const agent of this.agents.values()) {
      if (!agent.session) continue;
      if (agent.missedPings >= 5) {
        logger.warn({ agent: agent.id }, 'agent silent for 5 heartbeat periods; closing its session');
        agent.session.end(new TransportError('DEADLINE_EXCEEDED', 'no message from the agent for 5 heartbeat periods'));
      } else {
        agent.missedPings++;
        agent.pingNonce = ++this.nonce;
        agent.session.send({ kind: 'ping', nonce: agent.pingNonce });
      }
    }
  }

  // ---- validation of results ----

  private reject(agent: AgentRecord, reason: RejectionReason, detail: string): void {
    agent.stats.rejected++;
    agent.stats.rejections[reason] = (agent.stats.rejections[reason] ?? 0) + 1;
    logger.warn({ agent: agent.id, reason, detail }, 'rejected a message from an agent');
  }

  private onResult(agent: AgentRecord, result: Result): void {
    if (this.secure) return this.reject(agent, 'secure-aggregation', 'a plain Result in a secure-aggregation job: only masked input is taken');
    const open = this.open;
    const current = open && !open.settled;
    if (!current || result.round !== open.round || result.attempt !== open.attempt) {
      const ref = open ?? { round: this.nextRound, attempt: Number.MAX_SAFE_INTEGER };
      const past = result.round < ref.round || (result.round === ref.round && result.attempt <= ref.attempt);
      if (past) agent.stats.late++;
      else this.reject(agent, 'wrong-round', `result for round ${result.round} attempt ${result.attempt}, open: ${open ? `${open.round}/${open.attempt}` : 'none'}`);
      return;
    }
    const seeds = open.assigned.get(agent.id);
    if (!seeds) return this.reject(agent, 'not-assigned', `round ${result.round} asked other agents`);
    if (open.results.has(agent.id)) return this.reject(agent, 'duplicate', `second result for round ${result.round}`);
    if (result.seeds.length !== seeds.length || result.seeds.some((s, i) => s !== seeds[i])) {
      return this.reject(agent, 'wrong-seeds', 'result.seeds differ from the seeds assigned');
    }
    if (result.sampleCount > this.options.batchSize) {
      return this.reject(agent, 'bad-sample-count', `result.sampleCount ${result.sampleCount} exceeds the batch size ${this.options.batchSize}`);
    }
    const recordDp = this.options.recordDp;
    if (recordDp?.private) {
      // Private mode: the agent releases g alone, with the sample count the accountant assumes.
      if (result.lossPlus !== undefined) return this.reject(agent, 'losses-in-private-mode', 'result.lossPlus: a private-mode result must carry no losses');
      if (result.sampleCount !== this.options.batchSize) {
        return this.reject(agent, 'bad-sample-count', `result.sampleCount ${result.sampleCount}: a private-mode result gives the batch size ${this.options.batchSize}`);
      }
    } else if (result.lossPlus === undefined || result.lossMinus === undefined) {
      return this.reject(agent, 'missing-losses', 'result.lossPlus: the job is not in private mode, so results carry both losses');
    }
    // Under record-level DP g is clipped and noised, so it cannot match the losses: only its range is checked.
    const bound = recordDp ? Math.min(this.options.maxAbsG, maxAbsRecordDpG(recordDp, seeds.length, this.options.batchSize)) : this.options.maxAbsG;
    const eps = this.options.epsilon;
    for (let k = 0; k < seeds.length; k++) {
      const g = result.g[k]!;
      if (Math.abs(g) > bound) return this.reject(agent, 'out-of-bounds', `result.g[${k}] = ${g} exceeds ${bound}`);
      if (recordDp || !result.lossPlus || !result.lossMinus) continue;
      const expected = (result.lossPlus[k]! - result.lossMinus[k]!) / (2 * eps);
      if (Math.abs(g - expected) > 1e-6 * (1 + Math.abs(expected))) {
        return this.reject(agent, 'inconsistent-g', `result.g[${k}] = ${g}, but the losses give ${expected}`);
      }
    }
    open.results.set(agent.id, { agentId: agent.id, ...result });
    // A valid answer was computed at the round's version: the agent holds at least that (lag metrics between heartbeats).
    agent.version = Math.max(agent.version, open.version);
    open.check();
  }

  // ---- the transport handler ----

  /**
   * Checks an agent's credentials: its own token when options.tokens lists it, else the shared token when one
   * is set; with per-agent tokens and no shared token, an unlisted agent is refused. Revoked agents never pass.
   */
  private authenticate(agentId: string, token: string, peer: string): void {
    // Over its failure budget, a peer is refused unheard: no token comparison, no state, no log line.
    if (!this.authLimiter.allows(peer)) throw new TransportError('RESOURCE_EXHAUSTED', 'too many failed authentications from this address; retry later');
    try {
      this.checkCredentials(agentId, token);
    } catch (err) {
      this.authFailed++;
      this.authLimiter.failed(peer);
      throw err;
    }
    this.authLimiter.succeeded(peer);
  }

  private checkCredentials(agentId: string, token: string): void {
    if (this.revoked.has(agentId)) throw new TransportError('PERMISSION_DENIED', `agent ${agentId}: credentials revoked`);
    const { tokens, token: shared } = this.options;
    if (Object.hasOwn(tokens, agentId)) {
      if (!sameSecret(token, tokens[agentId]!)) throw new TransportError('UNAUTHENTICATED', `agent ${agentId}: bad token`);
    } else if (shared !== '') {
      if (!sameSecret(token, shared)) throw new TransportError('UNAUTHENTICATED', `agent ${agentId}: bad token`);
    } else if (Object.keys(tokens).length > 0) {
      throw new TransportError('PERMISSION_DENIED', `agent ${agentId} is not registered for this job`);
    }
  }

  private joined(info: CallInfo): AgentRecord {
    this.authenticate(info.agentId, info.token, info.peer);
    const agent = this.agents.get(info.agentId);
    if (!agent) throw new TransportError('FAILED_PRECONDITION', `agent ${info.agentId} has not joined`);
    if (!sameSecret(info.token, agent.token)) {
      this.authFailed++;
      this.authLimiter.failed(info.peer);
      throw new TransportError('UNAUTHENTICATED', `agent ${info.agentId}: token differs from the one it joined with`);
    }
    return agent;
  }

  /** Takes one message from the agent's budget; false (and counted) when it is spent. */
  private solicited(agent: AgentRecord, message: AgentMessage): boolean {
    if (this.secureRound?.expects(agent.id, message)) return true;
    // The answer to our latest ping is ours to pay for: an agent that answers every heartbeat must not run out of
    // budget when the coordinator's ticks outpace the refill. One free pong per ping, so pongs cannot flood.
    if (message.kind === 'pong') {
      if (agent.pingNonce === undefined || message.nonce !== agent.pingNonce) return false;
      agent.pingNonce = undefined;
      return true;
    }
    const answer = message.kind === 'result' ? message.result : message.kind === 'decline' ? message.decline : undefined;
    if (answer === undefined) return false;
    const open = this.open;
    return (
      open !== undefined &&
      open.assigned.has(agent.id) &&
      !open.results.has(agent.id) &&
      !open.declined.has(agent.id) &&
      answer.round === open.round &&
      answer.attempt === open.attempt
    );
  }

  /**
   * An agent said it will not evaluate its task (busy device, or a batch over its memory budget): counted as a
   * decline, not a fault, and the round stops waiting for it. A busy agent is left out of sampling until a
   * heartbeat says it is free again.
   */
  private onDecline(agent: AgentRecord, decline: Decline): void {
    if (decline.reason === 'busy') agent.capabilities = { ...agent.capabilities, busy: true };
    const secure = this.secureRound;
    if (secure && decline.round === secure.round && decline.attempt === secure.attempt) secure.drop(agent.id);
    const open = this.open;
    if (!open || open.settled || decline.round !== open.round || decline.attempt !== open.attempt || !open.assigned.has(agent.id)) return;
    if (open.results.has(agent.id) || open.declined.has(agent.id)) return;
    agent.stats.declined++;
    open.declined.add(agent.id);
    logger.info({ agent: agent.id, round: decline.round, reason: decline.reason }, 'agent declined its task');
    open.check();
  }

  private spend(agent: AgentRecord): boolean {
    const { perSecond, burst } = this.options.rateLimit;
    if (perSecond === 0) return true;
    const now = performance.now();
    const budget = agent.budget;
    budget.tokens = Math.min(burst, budget.tokens + ((now - budget.at) / 1000) * perSecond);
    budget.at = now;
    if (budget.tokens < 1) {
      agent.stats.rateLimited++;
      return false;
    }
    budget.tokens -= 1;
    return true;
  }

  private overBudget(agent: AgentRecord): TransportError {
    const { perSecond, burst } = this.options.rateLimit;
    return new TransportError('RESOURCE_EXHAUSTED', `agent ${agent.id}: over its message budget (${perSecond}/s, burst ${burst})`);
  }

  /**
   * Revokes an agent's credentials: its session ends with PERMISSION_DENIED and every later Join, Session or
   * FetchLog of that id is refused, whatever token it presents.
   */
  revoke(agentId: string): void {
    this.revoked.add(agentId);
    const agent = this.agents.get(agentId);
    agent?.session?.end(new TransportError('PERMISSION_DENIED', `agent ${agentId}: credentials revoked`));
    logger.warn({ agent: agentId }, 'agent credentials revoked');
  }

  private handler(): CoordinatorHandler {
    return {
      health: this.health,
      secretOf: (agentId: string): string | undefined => {
        const { tokens, token } = this.options;
        if (Object.hasOwn(tokens, agentId)) return tokens[agentId];
        return token === '' ? undefined : token;
      },

      signStatement: (kind: string, fields: readonly string[]): string | undefined => this.log.signStatement(kind, fields),

      join: async (request: JoinRequest, peer: string): Promise<JoinAccepted> => {
        if (this.stopping) throw new TransportError('UNAVAILABLE', 'the coordinator is shutting down');
        this.authenticate(request.agentId, request.token, peer);
        const header = this.log.header;
        if (request.baseSha256 !== header.baseSha256) {
          throw new TransportError('FAILED_PRECONDITION', `join.baseSha256: the job's base is ${header.baseSha256}, the agent holds ${request.baseSha256}`);
        }
        if (request.versionHeld > this.log.version) {
          throw new TransportError('FAILED_PRECONDITION', `join.versionHeld: ${request.versionHeld} is ahead of the log (version ${this.log.version})`);
        }
        let agent = this.agents.get(request.agentId);
        if (agent && !this.spend(agent)) throw this.overBudget(agent);
        if (!agent) {
          if (this.agents.size >= this.options.maxAgents) throw new TransportError('RESOURCE_EXHAUSTED', `the job already has ${this.options.maxAgents} agents`);
          agent = { id: request.agentId, token: request.token, capabilities: request.capabilities, session: undefined, version: 0, weightsSha256: undefined, weightsVersion: undefined, missedPings: 0, stats: newStats(), budget: { tokens: this.options.rateLimit.burst, at: performance.now() }, sentVersion: 0, joinedAtVersion: 0 };
          this.agents.set(agent.id, agent);
        }
        agent.token = request.token;
        agent.capabilities = request.capabilities;
        agent.version = request.versionHeld;
        agent.joinedAtVersion = this.log.version;
        const jobEnd = this.endOfJob();
        logger.info({ agent: agent.id, peer, version: request.versionHeld, ...(jobEnd ? { jobEnded: jobEnd.reason } : {}) }, 'agent joined');
        const snapshotVersion = this.replica.newestSnapshot();
        return {
          jobId: this.options.jobId,
          distribution: header.distribution,
          ...(header.rank !== undefined ? { rank: header.rank } : {}),
          epsilon: this.options.epsilon,
          baseSha256: header.baseSha256,
          currentVersion: this.log.version,
          headHash: this.log.headHash,
          genesisHash: this.log.genesisHash,
          decayRanges: header.decayRanges.map(([s, e]): [number, number] => [s, e]),
          heartbeatMs: this.options.heartbeatMs,
          snapshotVersion,
          snapshotBytes: this.replica.snapshotBytes(snapshotVersion),
          logBytes: this.replica.logBytesFrom(request.versionHeld),
          logBytesAfterSnapshot: this.replica.logBytesFrom(snapshotVersion),
          logFloor: this.replica.logFloor(),
          rebaseVersion: this.log.lastRebaseVersion,
          compactEvery: this.options.compactEvery ?? 0,
          ...(jobEnd ? { jobEnd } : {}),
          ...(this.log.publicKey ? { logPublicKey: this.log.publicKey } : {}),
        };
      },

      fetchLog: async (request: FetchLogRequest, info: CallInfo): Promise<FetchLogResponse> => {
        const agent = this.joined(info);
        if (!this.spend(agent)) throw this.overBudget(agent);
        const head = this.log.version;
        const to = request.toVersion === 0 ? head : request.toVersion;
        if (request.fromVersion > head || to > head) {
          throw new TransportError('OUT_OF_RANGE', `fetchLog: versions ${request.fromVersion}..${to} exceed the head (${head})`);
        }
        const floor = this.replica.logFloor();
        if (request.fromVersion < floor) {
          throw new TransportError('OUT_OF_RANGE', `fetchLog: entries up to version ${floor} are served only as a snapshot (FetchSnapshot); asked from ${request.fromVersion}`);
        }
        const end = Math.min(to, request.fromVersion + MAX_ENTRIES_PER_PAGE);
        return { entries: this.log.entries(request.fromVersion, end), headVersion: head };
      },

      fetchSnapshot: async (request: FetchSnapshotRequest, info: CallInfo): Promise<Iterable<SnapshotChunk>> => {
        const agent = this.joined(info);
        if (!this.spend(agent)) throw this.overBudget(agent);
        return this.replica.snapshotChunks(request);
      },

      session: (session: ServerSession): void => {
        const agent = this.joined(session.info);
        if (agent.session) agent.session.end(new TransportError('ABORTED', 'replaced by a newer session of the same agent'));
        agent.session = session;
        agent.missedPings = 0;
        // The agent caught up (FetchLog) to the head its Join reported before opening the session; entries
        // committed since then reach it on this session (it skips any it fetched meanwhile).
        agent.sentVersion = Math.min(agent.joinedAtVersion, this.log.version);
        this.broadcaster.deliverPending(agent);
        session.listen({
          message: (message: AgentMessage) => {
            if (agent.session !== session) return;
            agent.missedPings = 0;
            // The result of an open assignment costs no budget: a fast agent in fast rounds is not flooding.
            // Everything else — heartbeats, pongs, extra or stray results — does.
            if (!this.solicited(agent, message) && !this.spend(agent)) {
              logger.warn({ agent: agent.id }, 'agent over its message budget; ending its session');
              session.end(this.overBudget(agent));
              return;
            }
            switch (message.kind) {
              case 'result':
                this.onResult(agent, message.result);
                break;
              case 'decline':
                this.onDecline(agent, message.decline);
                break;
              case 'secAggKeys':
              case 'secAggShares':
              case 'secAggMaskedInput':
              case 'secAggReveal': {
                const refused = this.secureRound ? this.secureRound.handle(agent.id, message) : 'late';
                if (refused === 'late') agent.stats.late++;
                else if (refused !== undefined) this.reject(agent, 'secure-aggregation', refused);
                break;
              }
              case 'heartbeat': {
                if (message.heartbeat.busy !== undefined && message.heartbeat.busy !== (agent.capabilities.busy ?? false)) {
                  agent.capabilities = { ...agent.capabilities, busy: message.heartbeat.busy };
                  // An agent free again may be what a waiting round needs.
                  if (!message.heartbeat.busy) this.notify();
                }
                agent.version = message.heartbeat.version;
                agent.weightsSha256 = message.heartbeat.weightsSha256;
                agent.weightsVersion = message.heartbeat.version;
                const ours = this.replica.weightsSha256At(message.heartbeat.version);
                if (ours !== undefined && ours !== message.heartbeat.weightsSha256) {
                  agent.stats.divergent++;
                  logger.warn({ agent: agent.id, version: message.heartbeat.version }, 'agent weights differ from the log materialisation');
                }
                break;
              }
              case 'pong':
                break;
            }
          },
          invalid: (error) => {
            if (agent.session !== session) return;
            this.reject(agent, 'invalid-message', error.message);
            if (!this.spend(agent)) session.end(this.overBudget(agent));
          },
          closed: (error) => {
            if (agent.session !== session) return;
            agent.session = undefined;
            this.secureRound?.drop(agent.id);
            logger.info({ agent: agent.id, reason: error?.message }, 'agent session closed');
            const open = this.open;
            if (open && open.assigned.has(agent.id) && !open.results.has(agent.id) && !open.declined.has(agent.id)) {
              open.gone.add(agent.id);
              open.check();
            }
            this.notify();
          },
        });
        // A session opened after the end (its agent joined just before) hears it at once.
        this.broadcaster.sendJobEnd(agent);
        this.notify();
      },
    };
  }
}
