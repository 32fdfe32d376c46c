/**
 * The coordinator: serves agents over a Transport and runs ONE round loop. This file composes its rooms and
 * keeps the public class:
 *
 * - round-loop.ts: the rounds (ask the Strategy, send tasks, collect, aggregate, append, broadcast, retry), the
 *   secure-aggregation phases in place of collecting, and the end of the job;
 * - result-validator.ts: what makes a Result acceptable, rejections counted per agent;
 * - agent-registry.ts: credentials, revocation, the per-agent message budget, pings, who is connected;
 * - replica.ts: the materialised weights, snapshots, what FetchLog serves, compaction;
 * - broadcaster.ts: committed entries and the job's end to every agent, batched;
 * - service-handler.ts: the Transport handler (Join, FetchLog, FetchSnapshot, sessions).
 *
 * Durability first: an update is appended to the UpdateLog (the append resolves after fdatasync) before any
 * agent hears of it. Reopening the same log resumes at the round after its last entry.
 */
import type { NoiseEngine } from '../shared/noise/engine.js';
import type { LowRankLayout } from '../shared/noise/index.js';
import type { UpdateLog } from '../shared/log/index.js';
import { slabSha256 } from '../shared/model/index.js';
import { logger } from '../shared/logger.js';
import type { JobEnd, Listener, Traffic, Transport } from '../shared/transport/index.js';
import { ServiceHealth } from '../shared/transport/health.js';
import { AgentRegistry, type AgentStatus } from './agent-registry.js';
import { Broadcaster } from './broadcaster.js';
import { parseRoundOptions, type RoundOptions, type RoundOptionsInput } from './options.js';
import { Replica, type SnapshotSettings } from './replica.js';
import { ResultValidator } from './result-validator.js';
import { RoundLoop, type RoundReport, type RunReport, type SecureAggregationSetup } from './round-loop.js';
import { SecureAggregationConfigError, secureAggregationOptionsSchema, secureAggregationTarget, type SecureAggregationOptionsInput } from './secure-aggregation.js';
import { serviceHandler } from './service-handler.js';
import type { SnapshotScan } from './snapshot.js';
import { MezoStrategy, type Strategy } from './strategy.js';

export type { AgentStats, AgentStatus } from './agent-registry.js';
export type { RejectionReason } from './result-validator.js';
export { RoundFailedError, type RoundReport, type RunReport } from './round-loop.js';

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


export class Coordinator {
  readonly log: UpdateLog;
  readonly options: RoundOptions;
  readonly strategy: Strategy;
  /**
   * What every health check answers (gRPC health, the NATS health subject, /readyz): NOT_SERVING until the
   * listener is up, SERVING while it serves, NOT_SERVING from the moment close() begins.
   */
  readonly health = new ServiceHealth('NOT_SERVING');
  private readonly transport: Transport;
  private readonly agents: AgentRegistry;
  private readonly replica: Replica;
  private readonly broadcaster: Broadcaster;
  private readonly rounds: RoundLoop;
  private readonly validator: ResultValidator;
  private listener: Listener | undefined;
  private pinger: NodeJS.Timeout | undefined;

  constructor(init: CoordinatorInit) {
    this.options = parseRoundOptions(init.options);
    this.agents = new AgentRegistry(this.options);
    this.log = init.log;
    this.transport = init.transport;
    this.broadcaster = new Broadcaster(this.log, this.options.broadcastIntervalMs, () => this.agents.all());
    this.strategy = init.strategy ?? new MezoStrategy(this.options.strategy);
    const size = this.strategy.agentsPerRound;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 1)) {
      throw new RangeError(`coordinator: strategy.agentsPerRound must be a positive integer, got ${String(size)}`);
    }
    let secure: SecureAggregationSetup | undefined;
    if (init.secureAggregation) {
      const parsed = secureAggregationOptionsSchema.safeParse(init.secureAggregation);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new SecureAggregationConfigError(`secureAggregation.${issue.path.join('.')}: ${issue.message}`);
      }
      if (parsed.data.enabled) secure = { options: parsed.data, target: secureAggregationTarget(this.strategy) };
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
    this.validator = new ResultValidator(this.options, secure !== undefined);
    this.rounds = new RoundLoop({ log: this.log, options: this.options, strategy: this.strategy, agents: this.agents, replica: this.replica, broadcaster: this.broadcaster, secure });
    if (init.onRound) this.rounds.onRound(init.onRound);
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
    return this.rounds.nextRound;
  }

  get address(): string | undefined {
    return this.listener?.address;
  }

  /** Calls `listener` after every committed round (besides init.onRound); returns its unsubscribe. */
  onRound(listener: (report: RoundReport) => void): () => void {
    return this.rounds.onRound(listener);
  }

  /**
   * Refused callers, in totals only (no state per caller): calls that failed authentication, calls refused
   * unheard because their address was over its failure budget, addresses tracked by that limit (bounded), and
   * the bytes of every refused call as the transport counted them.
   */
  authFailures(): { failed: number; limited: number; peersTracked: number; refusedCalls: number; refusedBytes: number } {
    const refused = this.listener?.refused?.() ?? { calls: 0, bytesUp: 0 };
    return { ...this.agents.authFailures(), refusedCalls: refused.calls, refusedBytes: refused.bytesUp };
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
    return this.agents.agentStatus(id);
  }

  agentStatuses(): AgentStatus[] {
    return this.agents.agentStatuses();
  }

  connectedAgents(): string[] {
    return this.agents.connectedAgents();
  }

  /** Starts serving agents. */
  async listen(): Promise<string> {
    if (this.listener) return this.listener.address;
    await this.replica.restore();
    this.listener = await this.transport.listen(
      serviceHandler({ log: this.log, options: this.options, health: this.health, agents: this.agents, replica: this.replica, broadcaster: this.broadcaster, loop: this.rounds, validator: this.validator }),
    );
    this.health.set('SERVING');
    this.pinger = setInterval(() => this.agents.pingAll(), this.options.heartbeatMs);
    this.pinger.unref();
    logger.info({ address: this.listener.address, jobId: this.options.jobId, version: this.log.version }, 'coordinator listening');
    return this.listener.address;
  }

  /** Runs rounds until options.rounds are in the log or stop() is called. Rejects with RoundFailedError. */
  run(): Promise<RunReport> {
    return this.rounds.run();
  }

  /**
   * Stops scheduling and abandons the open round (its results are dropped). run() then resolves. Agents are told
   * nothing and reconnect, as after a crash, unless `endJob`: then, once no entry can be appended any more, every
   * agent hears that the job ended (reason 'stopped') and leaves, or waits for the next job.
   */
  stop(options: { endJob?: boolean } = {}): void {
    this.rounds.stop(options);
  }

  /** How the job ended, once it has (every round in the log, or stop({ endJob: true })). */
  get jobEnd(): JobEnd | undefined {
    return this.rounds.jobEnd;
  }

  /**
   * Revokes an agent's credentials: its session ends with PERMISSION_DENIED and every later Join, Session or
   * FetchLog of that id is refused, whatever token it presents.
   */
  revoke(agentId: string): void {
    this.agents.revoke(agentId);
  }

  /** stop(), wait for the loop, close every stream and the listener, then the log (pending appends flushed). */
  async close(graceMs = 2000): Promise<void> {
    this.health.set('NOT_SERVING');
    this.stop();
    await this.rounds.idle();
    this.broadcaster.flush();
    if (this.pinger) clearInterval(this.pinger);
    await this.listener?.close(graceMs);
    this.listener = undefined;
    await this.replica.snapshotsWritten();
    await this.log.close();
  }
}
