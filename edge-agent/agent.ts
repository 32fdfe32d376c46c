/**
 * An edge agent of a federated MeZO job. It joins the coordinator, catches up on the update log (a fresh agent
 * starts from the base weights at version 0), then serves its Session stream: for each Task it evaluates two
 * perturbed losses per seed on a batch of its local data and sends back only scalars; each broadcast Update is
 * checked against its own hash chain and applied in order (a gap is filled with FetchLog). An agent far behind
 * catches up by downloading a snapshot of the weights instead when that moves fewer bytes (or when the
 * coordinator no longer serves the log entries it lacks), verifies its SHA-256, loads it and replays the rest.
 * It sends heartbeats
 * with its version and weights hash, answers pings at once (the model may be busy on its worker thread), and
 * reconnects with exponential backoff and jitter when the connection drops. When the coordinator says the job has
 * ended (a JobEnd on the session, or in the Join answer) the agent either leaves with the final weights or waits
 * for the next job (AgentInit.onJobEnd); a coordinator that crashes says nothing, so its agents reconnect.
 * With device limits (AgentInit.device) it declines tasks while its device is busy or when a task's batch would
 * not fit its memory budget, and tells the coordinator whether it is busy in its Join and heartbeats.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import { CoefficientSums, LogVerifier, replayStep, replaySteps, SNAPSHOT_STATEMENT, snapshotStatementFields, UpdateLog, verifyEntry, type LogEntry, type ReplayStep } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import type { PreparedModel } from '../shared/model/index.js';
import type { Distribution, Seed } from '../shared/noise/index.js';
import {
  isPermanent,
  TransportError,
  type Capabilities,
  type ClientSession,
  type CoordinatorClient,
  type CoordinatorMessage,
  type JobEnd,
  type JoinAccepted,
  type JoinRequest,
  type SnapshotChunk,
  type Task,
  type Transport,
} from '../shared/transport/index.js';
import type { BatchData } from './batch-feeds.js';
import type { DeviceBudget } from './device-budget.js';
import type { MezoBackend } from './mezo-backend.js';
import { belowPrivacyFloor, type PrivacyFloor } from '../shared/privacy/record-dp.js';
import { secureAggregationClient } from './secure-aggregation-client.js';

export interface AgentInit {
  agentId: string;
  token?: string;
  transport: Transport;
  /** The base model (its slab must be the job's base). */
  prepared: PreparedModel;
  /** Builds the model backend once the job's distribution is known (see createAgentBackend). */
  createBackend: (distribution: Distribution, rank?: number) => Promise<MezoBackend>;
  /**
   * The agent's local examples, or a function that provides them when the first task needs them (a simulation
   * of thousands of agents builds only the shares in use, and may drop and rebuild them: it must return the same
   * examples every time).
   */
  data: LocalDataset<FeatureArray> | (() => LocalDataset<FeatureArray>);
  /** Seeds the agent's batch order. */
  dataSeed?: Seed;
  capabilities?: Partial<Capabilities>;
  /**
   * What the device allows (device-budget.ts): a task whose batch does not fit the memory budget, or any task
   * while the load is above the threshold, is declined (a Decline, which the coordinator counts as such, not as
   * a fault); heartbeats and the Join carry the busy state. Unset: every task is taken.
   */
  device?: DeviceBudget;
  /** Keeps a replica of the update log here, so a restarted agent replays locally and fetches only what is new. */
  stateDir?: string;
  /**
   * Without stateDir: keep the log replica in memory (default true). A simulation's virtual agents turn it off,
   * since thousands of copies of the log would dwarf the model; the weights and the chain head are still checked.
   */
  keepLogReplica?: boolean;
  /** First reconnect delay and its cap, ms (defaults 200 and 10,000); each failure doubles it, with jitter. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * The coordinator's log key ("ed25519:" + 64 hex digits), from the agent's enrolment: a coordinator that
   * presents another key (or none) is refused. Unset: the key of the first Join is pinned for the job.
   */
  logPublicKey?: string;
  /**
   * The weakest record-level DP the agent accepts (shared/privacy/record-dp.ts): a task with a larger clip, a
   * smaller noise multiplier, without private mode when required, or without record-level DP at all, is declined
   * (reason 'privacy'). Unset: the agent applies what each task says.
   */
  privacyFloor?: PrivacyFloor;
  /**
   * When the coordinator says the job has ended: 'leave' catches up to the job's final version, ends the session
   * and resolves run() with the end; 'wait' (the default, so embedding code decides) stays connected and keeps
   * reconnecting, and a coordinator of another job then starts the agent afresh on that job.
   */
  onJobEnd?: 'leave' | 'wait';
  /**
   * Give up when no Join has succeeded for this long (ms): run() rejects with CoordinatorUnreachableError.
   * Default: never. Time on an open session counts as reached.
   */
  giveUpAfterMs?: number;
}

/**
 * What the agent's health endpoints report (edge-agent/health-server.ts): `alive` while run() has neither
 * resolved nor rejected; `ready` with an open session at the newest version the agent has heard of; otherwise
 * `reason` says why not, in one line.
 */
export interface AgentHealth {
  alive: boolean;
  ready: boolean;
  reason: string;
}

/** Why run() resolved: stop() was called, or the coordinator said the job ended (onJobEnd 'leave'). */
export type AgentExit = { reason: 'stopped' } | { reason: 'job-ended'; jobEnd: JobEnd };

/** No coordinator answered a Join for AgentInit.giveUpAfterMs; `cause` is the last connection error. */
export class CoordinatorUnreachableError extends Error {
  override name = 'CoordinatorUnreachableError';
}

export type CatchUpPath = 'log' | 'snapshot';

/** How the agent last caught up after joining, and the byte counts the coordinator reported for each path. */
export interface CatchUpRecord {
  path: CatchUpPath;
  from: number;
  to: number;
  /** FetchLog bytes from `from` to the head. */
  logBytes: number;
  /** FetchSnapshot bytes plus FetchLog bytes after the snapshot (undefined when no snapshot was on offer). */
  snapshotBytes: number | undefined;
  /** The snapshot's version when path is 'snapshot'. */
  snapshotVersion?: number;
  /** Set when the log path started at this rebase record, skipping every entry before it (compaction). */
  rebaseVersion?: number;
}

export interface AgentState {
  version: number;
  headHash: string | undefined;
  tasksDone: number;
  reconnects: number;
  lastCatchUp: CatchUpRecord | undefined;
  /** Snapshots downloaded and refused (hash or framing did not check out). */
  snapshotsRejected: number;
  /** Broadcast updates dropped: not signed by the job's key, not matching their hash, or not chaining. */
  updatesRejected: number;
  /** Tasks declined because the device was busy or the batch did not fit the memory budget. */
  tasksDeclined: number;
}

/**
 * The catch-up path from `version` given what the coordinator reported at join: the snapshot when the log no
 * longer reaches back to `version`, or when the snapshot plus the log after it is strictly fewer bytes than the
 * log from `version`; the log otherwise.
 */
export function chooseCatchUp(version: number, accepted: JoinAccepted): CatchUpPath {
  if (version >= accepted.currentVersion || accepted.snapshotVersion <= version) return 'log';
  // Behind the last rebase record, the log path starts at the record itself (logBytes already counts that).
  const rebase = accepted.rebaseVersion ?? 0;
  if ((version < rebase - 1 ? rebase - 1 : version) < accepted.logFloor) return 'snapshot';
  return accepted.snapshotBytes + accepted.logBytesAfterSnapshot < accepted.logBytes ? 'snapshot' : 'log';
}

/** A downloaded snapshot failed its checks; nothing was loaded. A retry (reconnect) may get a good one. */
export class SnapshotRejectedError extends TransportError {
  override name = 'SnapshotRejectedError';

  constructor(message: string) {
    super('DATA_LOSS', message);
  }
}

/** The agent's weights no longer follow the coordinator's chain: it must be reset, not reconnected. */
export class AgentStateError extends Error {
  override name = 'AgentStateError';
}

interface Job {
  accepted: JoinAccepted;
  backend: MezoBackend;
  /**
   * The local log replica while it holds every entry the weights reflect (from genesis). Loading a snapshot
   * retires it: a stored file keeps its valid prefix, which a restart replays before catching up again.
   */
  replica: UpdateLog | undefined;
  /** The weights' version and the hash of the entry at it (the genesis hash at 0). */
  version: number;
  headHash: string;
  /**
   * Per-seed coefficient sums since the last rebase (shared/log/compaction.ts), to check the next rebase record
   * before applying it. Unknown (undefined) after a snapshot until a rebase arrives.
   */
  sums: CoefficientSums | undefined;
  /** Checks entries against the job's log key; undefined when the coordinator does not sign its log. */
  verifier: LogVerifier | undefined;
}

export class Agent {
  readonly id: string;
  private readonly init: AgentInit;
  private job: Job | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private exited: AgentExit | undefined;
  /** The end of the job the agent holds, once the coordinator has said so (cleared when that job resumes). */
  private heardEnd: JobEnd | undefined;
  private client: CoordinatorClient | undefined;
  private wakeSleep: (() => void) | undefined;
  private endSession: (() => void) | undefined;
  /** Where the agent is in its data: batch `index` of `epoch`; the iterator is kept only for data held fixed. */
  private batches: { size: number; epoch: number; index: number; iterator: Iterator<BatchData> | undefined } | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private tasksDone = 0;
  private reconnects = 0;
  private lastCatchUp: CatchUpRecord | undefined;
  private snapshotsRejected = 0;
  private updatesRejected = 0;
  private tasksDeclined = 0;
  /** When a rejected update last sent the agent to the log (performance.now()). */
  private lastResyncAt = -Infinity;
  /** For health: a Session stream is open, the newest log version heard of, the last decline, how run() ended. */
  private sessionOpen = false;
  private knownHead = 0;
  private lastDecline: string | undefined;
  private failure: Error | undefined;

  constructor(init: AgentInit) {
    this.init = init;
    this.id = init.agentId;
  }

  get state(): AgentState {
    return {
      version: this.job?.version ?? 0,
      headHash: this.job?.headHash,
      tasksDone: this.tasksDone,
      reconnects: this.reconnects,
      lastCatchUp: this.lastCatchUp,
      snapshotsRejected: this.snapshotsRejected,
      updatesRejected: this.updatesRejected,
      tasksDeclined: this.tasksDeclined,
    };
  }

  /** Liveness and readiness, with the reason it is not ready (no secrets: versions and states only). */
  get health(): AgentHealth {
    const alive = this.running !== undefined && this.exited === undefined && this.failure === undefined;
    const not = (reason: string): AgentHealth => ({ alive, ready: false, reason });
    if (this.failure) return not(`ended: failed (${this.failure.name})`);
    if (this.exited) return not(this.exited.reason === 'job-ended' ? `ended: job ${this.exited.jobEnd.jobId} ended` : 'ended: stopped');
    if (this.running === undefined) return not('not started');
    if (this.stopped) return not('stopping');
    if (!this.job) return not('connecting to the coordinator');
    if (!this.sessionOpen) return not(`connecting: no open session (version ${this.job.version})`);
    // An agent that stays after its job ended is alive but of no use until the next job.
    if (this.heardEnd) return not(`waiting for the next job: job ${this.heardEnd.jobId} ended at version ${this.heardEnd.version}`);
    if (this.job.version < this.knownHead) return not(`catching up: version ${this.job.version} of ${this.knownHead}`);
    if (this.init.device?.busy()) return not('paused: device busy');
    if (this.lastDecline !== undefined && this.lastDecline !== 'busy') return not(`declined the last task: ${this.lastDecline}`);
    return { alive, ready: true, reason: `ready at version ${this.job.version}` };
  }

  /** Why run() resolved (undefined while it runs, or when it rejected). */
  get exit(): AgentExit | undefined {
    return this.exited;
  }

  get backend(): MezoBackend | undefined {
    return this.job?.backend;
  }

  /**
   * Runs until stop() or, with onJobEnd 'leave', the end of the job; rejects on errors a reconnect cannot fix (bad
   * token, wrong base, a broken chain) and after giveUpAfterMs without reaching a coordinator.
   */
  run(): Promise<void> {
    this.running ??= this.loop().catch((err: unknown) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw err;
    });
    return this.running;
  }

  /** Ends the session and the reconnect loop; run() resolves once the work in hand is done. */
  stop(): void {
    this.stopped = true;
    this.endSession?.();
    this.wakeSleep?.();
  }

  /** stop(), wait for run(), then release the model and the log replica. */
  async close(): Promise<void> {
    this.stop();
    await this.running?.catch(() => undefined);
    await this.work.catch(() => undefined);
    await this.job?.backend.close();
    await this.job?.replica?.close();
    this.job = undefined;
  }

  private get leaves(): boolean {
    return this.init.onJobEnd === 'leave';
  }

  /** Records the coordinator's word that the job ended (logged once per end). */
  private hearEnd(jobEnd: JobEnd): void {
    if (this.heardEnd?.jobId !== jobEnd.jobId || this.heardEnd.version !== jobEnd.version || this.heardEnd.reason !== jobEnd.reason) {
      logger.info({ agent: this.id, ...jobEnd }, this.leaves ? 'the job ended; leaving' : 'the job ended; waiting for the next one');
    }
    this.heardEnd = jobEnd;
  }

  /** Drops the state of a job that ended, so the agent can join the next one from the base weights. */
  private async releaseJob(): Promise<void> {
    const job = this.job;
    if (!job) return;
    await this.work.catch(() => undefined);
    this.job = undefined;
    this.batches = undefined;
    this.lastCatchUp = undefined;
    this.heardEnd = undefined;
    await job.backend.close();
    await job.replica?.close();
    logger.info({ agent: this.id, jobId: job.accepted.jobId }, 'released the ended job');
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let reachedAt = Date.now();
    let lastError: Error | undefined;
    while (!this.stopped) {
      const client = this.init.transport.connect({ agentId: this.id, token: this.init.token ?? '' });
      this.client = client;
      try {
        const joinRequest = (): JoinRequest => ({
          agentId: this.id,
          token: this.init.token ?? '',
          capabilities: {
            memoryBytes: 0,
            cores: 0,
            noiseImpl: '',
            ...this.init.capabilities,
            ...(this.init.device ? { busy: this.init.device.busy() } : {}),
          },
          baseSha256: this.init.prepared.manifest.slabSha256,
          versionHeld: this.job?.version ?? 0,
        });
        const request = joinRequest();
        let accepted = await client.join(request);
        reachedAt = Date.now();
        this.knownHead = accepted.currentVersion;
        await this.setUp(accepted, client);
        // A stored replica replayed on the first join: ask again, so the byte counts are from the version held.
        if (this.job!.version !== request.versionHeld) {
          accepted = await client.join(joinRequest());
          this.job!.accepted = accepted;
          this.knownHead = accepted.currentVersion;
        }
        await this.catchUpAfterJoin(client, accepted);
        failures = 0;
        if (accepted.jobEnd) this.hearEnd(accepted.jobEnd);
        else if (this.heardEnd) this.heardEnd = undefined; // the same job resumed (a restart with more rounds)
        if (this.stopped) break;
        // Leaving: the weights are at the job's final version; no session is needed.
        if (!(accepted.jobEnd && this.leaves)) await this.serve(client);
        reachedAt = Date.now();
        if (this.heardEnd && this.leaves && !this.stopped) {
          this.exited = { reason: 'job-ended', jobEnd: this.heardEnd };
          return;
        }
      } catch (err) {
        if (err instanceof AgentStateError || isPermanent(err) || (err instanceof TransportError && err.code === 'FAILED_PRECONDITION' && !this.job)) {
          logger.error({ agent: this.id, err: (err as Error).message }, 'agent stopped: cannot continue');
          throw err;
        }
        // The job held ended and the coordinator now refuses that state (another job's log is shorter): start afresh.
        if (this.heardEnd && err instanceof TransportError && err.code === 'FAILED_PRECONDITION') await this.releaseJob();
        logger.warn({ agent: this.id, err: (err as Error).message }, 'connection to the coordinator lost');
        lastError = err as Error;
      } finally {
        client.close();
        this.client = undefined;
      }
      if (this.stopped) break;
      this.reconnects++;
      const giveUpAfterMs = this.init.giveUpAfterMs;
      const unreachableMs = Date.now() - reachedAt;
      if (giveUpAfterMs !== undefined && unreachableMs >= giveUpAfterMs) {
        const last = lastError ? `; last error: ${lastError.message}` : '';
        const error = new CoordinatorUnreachableError(`no coordinator reached for ${unreachableMs} ms (giving up after ${giveUpAfterMs} ms)${last}`, { cause: lastError });
        logger.error({ agent: this.id, err: error.message }, 'agent stopped: coordinator unreachable');
        throw error;
      }
      const delay = this.backoff(failures++);
      await this.sleep(giveUpAfterMs === undefined ? delay : Math.min(delay, giveUpAfterMs - unreachableMs));
    }
    this.exited = { reason: 'stopped' };
  }

  /** min(max, initial·2ⁿ), scaled by a random factor in [0.5, 1) so a fleet does not reconnect in lockstep. */
  private backoff(failures: number): number {
    const initial = this.init.reconnect?.initialMs ?? 200;
    const max = this.init.reconnect?.maxMs ?? 10_000;
    return Math.min(max, initial * 2 ** Math.min(failures, 30)) * (0.5 + 0.5 * Math.random());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** First join: build the backend and the log replica (replaying a stored one). Later joins: same job only. */
  private async setUp(accepted: JoinAccepted, client: CoordinatorClient): Promise<void> {
    if (this.job) {
      const held = this.job.accepted;
      const sameKey = (accepted.logPublicKey ?? null) === (this.job.verifier?.publicKey ?? null);
      // After the end, a coordinator with another log key runs another job, even under the same id and genesis.
      if (held.jobId === accepted.jobId && held.genesisHash === accepted.genesisHash && (sameKey || !this.heardEnd)) {
        this.job.verifier = this.logVerifier(accepted, this.job.verifier?.publicKey);
        this.job.accepted = accepted;
        return;
      }
      if (!this.heardEnd) {
        throw new AgentStateError(`the coordinator now runs job ${accepted.jobId} (genesis ${accepted.genesisHash.slice(0, 12)}…), not ${held.jobId}`);
      }
      // The job held has ended and this is the next one: start over from the base weights.
      await this.releaseJob();
    }
    const verifier = this.logVerifier(accepted, undefined);
    const header = {
      jobId: accepted.jobId,
      baseSha256: accepted.baseSha256,
      distribution: accepted.distribution,
      ...(accepted.rank !== undefined ? { rank: accepted.rank } : {}),
      decayRanges: accepted.decayRanges,
    };
    const replica = this.init.stateDir ? await UpdateLog.open(join(this.init.stateDir, `${accepted.jobId}.log`), header) : UpdateLog.inMemory(header);
    if (replica.genesisHash !== accepted.genesisHash) {
      await replica.close();
      throw new AgentStateError(`genesis hash mismatch: the coordinator says ${accepted.genesisHash}, the job header gives ${replica.genesisHash}`);
    }
    let replayable: UpdateLog | undefined = replica;
    if (replica.version > 0 && replica.version - 1 < accepted.logFloor) {
      // The coordinator no longer serves the entry that would prove this replica is on its chain; the agent
      // starts from the base and catches up by snapshot, leaving the stored file as it is.
      logger.info({ agent: this.id, replica: replica.version, floor: accepted.logFloor }, 'log replica older than the served log; not replayed');
      await replica.close();
      replayable = undefined;
    } else if (replica.version > 0) {
      // The stored replica must be a prefix of the coordinator's chain.
      const theirs = replica.version <= accepted.currentVersion
        ? (await client.fetchLog({ fromVersion: replica.version - 1, toVersion: replica.version })).entries[0]
        : undefined;
      if (!theirs || theirs.hash !== replica.headHash) {
        await replica.close();
        throw new AgentStateError(`the log replica in ${this.init.stateDir} (version ${replica.version}) is not part of the coordinator's chain`);
      }
    }
    const backend = await this.init.createBackend(accepted.distribution, accepted.rank);
    const baseSha = await backend.sha256();
    if (baseSha !== accepted.baseSha256) {
      await backend.close();
      await replica.close();
      throw new AgentStateError(`the backend's initial weights hash to ${baseSha}, the job's base is ${accepted.baseSha256}`);
    }
    const stored = replayable?.entries() ?? [];
    // Sums are kept only when the job compacts: otherwise they would grow with every new seed, without bound.
    const sums = (accepted.compactEvery ?? 0) > 0 ? new CoefficientSums() : undefined;
    for (const entry of stored) sums?.add(entry);
    for (const step of replaySteps(stored)) await this.applyToWeights(backend, step, accepted);
    this.job = {
      sums,
      accepted,
      backend,
      replica: this.init.stateDir === undefined && this.init.keepLogReplica === false ? undefined : replayable,
      version: replayable?.version ?? 0,
      headHash: replayable?.headHash ?? accepted.genesisHash,
      verifier,
    };
    logger.info({ agent: this.id, jobId: accepted.jobId, version: this.job.version }, 'agent set up');
  }

  /**
   * The verifier of the log key a Join presents. It must be the pinned key (AgentInit.logPublicKey), else the
   * key this job's Joins presented so far (`held`). A job whose log was unsigned may become signed (a coordinator
   * upgraded and restarted), never the reverse or another key.
   */
  private logVerifier(accepted: JoinAccepted, held: string | undefined): LogVerifier | undefined {
    const presented = accepted.logPublicKey;
    const pinned = this.init.logPublicKey ?? held;
    if (pinned !== undefined && presented !== pinned) {
      throw new AgentStateError(`the coordinator presents the log key ${presented ?? '(none: an unsigned log)'}, not the pinned ${pinned}; refusing the job`);
    }
    return presented === undefined ? undefined : LogVerifier.for(presented);
  }

  /** Why an entry is not the coordinator's own record (signature, then hash), or undefined when it is. */
  private recordFault(entry: LogEntry): string | undefined {
    const fault = verifyEntry(entry, this.job!.verifier);
    if (fault === undefined) return undefined;
    return `entry ${entry.version}: ${fault.kind === 'contents' ? fault.reason : `${fault.reason} (the job's key)`}`;
  }

  /**
   * A broadcast update that is not the coordinator's (recordFault) or does not chain onto these weights: it is
   * dropped and counted, and the log says what comes next.
   */
  private async rejectUpdate(client: CoordinatorClient, update: LogEntry, reason: string): Promise<void> {
    this.updatesRejected++;
    // A flood of forgeries must not become a flood of FetchLog calls on the coordinator: one per heartbeat period.
    const now = performance.now();
    if (now - this.lastResyncAt < (this.job!.accepted.heartbeatMs || 2000)) return;
    this.lastResyncAt = now;
    logger.warn({ agent: this.id, version: update.version, reason }, 'dropped a bad update; fetching the log instead');
    for (;;) {
      const page = await client.fetchLog({ fromVersion: this.job!.version, toVersion: 0 });
      for (const entry of page.entries) await this.applyEntry(entry);
      if (page.entries.length === 0 || this.job!.version >= page.headVersion) return;
    }
  }

  /** One replay step (shared/log/replay.ts) on the backend: the base weights again for a rebase, the decay, the terms in one pass. */
  private async applyToWeights(backend: MezoBackend, { entry, fromBase, decay }: ReplayStep, accepted: JoinAccepted): Promise<void> {
    if (fromBase) await backend.load(this.init.prepared.slab);
    await backend.apply(entry.terms, decay === undefined ? undefined : { factor: decay, ranges: accepted.decayRanges });
  }

  /**
   * The log path from behind the last rebase record starts at the record: its own hash is checked, but the
   * entry it chains to is never seen, so, like a snapshot, it is taken on the coordinator's word (heartbeats
   * then audit the weights). Later entries chain from it as usual, and later rebases are checked against the
   * sums that start here. The log replica retires, as after a snapshot.
   */
  private async jumpToRebase(client: CoordinatorClient, version: number): Promise<void> {
    const job = this.job!;
    const rebase = (await client.fetchLog({ fromVersion: version - 1, toVersion: version })).entries[0];
    if (!rebase || rebase.version !== version || rebase.kind !== 'rebase') {
      throw new TransportError('DATA_LOSS', `fetchLog: entry ${version} is not the rebase record the coordinator announced`);
    }
    const fault = this.recordFault(rebase);
    if (fault !== undefined) throw new TransportError('DATA_LOSS', `rebase ${fault}`);
    const { hash } = rebase;
    await this.applyToWeights(job.backend, replayStep(rebase), job.accepted);
    await job.replica?.close();
    job.replica = undefined;
    job.sums = CoefficientSums.startingAt(rebase);
    job.version = version;
    job.headHash = hash;
    logger.info({ agent: this.id, version, seeds: rebase.terms.length }, 'caught up from a rebase record');
  }

  /**
   * Brings the weights to the version the coordinator reported at join, by the cheaper path (chooseCatchUp).
   * A snapshot that fails its checks is refused; the agent then replays the log when the coordinator still
   * serves it from the agent's version, and otherwise gives up this connection (a reconnect tries again).
   */
  private async catchUpAfterJoin(client: CoordinatorClient, accepted: JoinAccepted): Promise<void> {
    const from = this.job!.version;
    if (from >= accepted.currentVersion) return;
    const path = chooseCatchUp(from, accepted);
    const rebase = accepted.rebaseVersion ?? 0;
    const offered = accepted.snapshotVersion > from ? accepted.snapshotBytes + accepted.logBytesAfterSnapshot : undefined;
    this.lastCatchUp = { path, from, to: accepted.currentVersion, logBytes: accepted.logBytes, snapshotBytes: offered };
    logger.info({ agent: this.id, ...this.lastCatchUp }, 'catching up');
    if (path === 'snapshot') {
      try {
        await this.loadSnapshot(client, accepted.snapshotVersion);
        this.lastCatchUp.snapshotVersion = accepted.snapshotVersion;
      } catch (err) {
        if (!(err instanceof SnapshotRejectedError)) throw err;
        this.snapshotsRejected++;
        if ((from < rebase - 1 ? rebase - 1 : from) < accepted.logFloor) throw err;
        logger.warn({ agent: this.id, err: err.message }, 'snapshot refused; catching up by the log instead');
        this.lastCatchUp = { ...this.lastCatchUp, path: 'log' };
      }
    }
    if (this.job!.version < rebase - 1) {
      await this.jumpToRebase(client, rebase);
      this.lastCatchUp.rebaseVersion = rebase;
    }
    await this.catchUp(client, accepted.currentVersion);
  }

  /** Downloads the snapshot at `version`, checks its signature (with a log key), framing and SHA-256, and only then loads it. */
  private async loadSnapshot(client: CoordinatorClient, version: number): Promise<void> {
    const job = this.job!;
    const expectedBytes = this.init.prepared.manifest.slabLength * 4;
    let first: SnapshotChunk | undefined;
    let bytes: Buffer | undefined;
    let received = 0;
    for await (const chunk of client.fetchSnapshot({ version })) {
      if (!first) {
        if (chunk.version !== version) throw new SnapshotRejectedError(`snapshot: asked for version ${version}, got ${chunk.version}`);
        if (chunk.totalBytes !== expectedBytes) throw new SnapshotRejectedError(`snapshot ${version}: ${chunk.totalBytes} bytes, the model has ${expectedBytes}`);
        // With a log key, the weights and the head they continue from must be the coordinator's own word.
        const identity = { genesisHash: job.accepted.genesisHash, version: chunk.version, entryHash: chunk.entryHash, weightsSha256: chunk.weightsSha256, totalBytes: chunk.totalBytes };
        if (job.verifier && !job.verifier.verifyStatement(SNAPSHOT_STATEMENT, snapshotStatementFields(identity), chunk.signature)) {
          throw new SnapshotRejectedError(`snapshot ${version}: ${chunk.signature === undefined ? 'unsigned' : 'signature does not hold'} under the log key ${job.verifier.publicKey}; not loaded`);
        }
        first = chunk;
        bytes = Buffer.alloc(chunk.totalBytes);
      } else if (chunk.version !== first.version || chunk.entryHash !== first.entryHash || chunk.weightsSha256 !== first.weightsSha256 || chunk.totalBytes !== first.totalBytes || chunk.signature !== first.signature) {
        throw new SnapshotRejectedError(`snapshot ${version}: chunk at offset ${chunk.offset} belongs to another snapshot`);
      }
      if (chunk.offset !== received) throw new SnapshotRejectedError(`snapshot ${version}: chunk at offset ${chunk.offset}, expected ${received}`);
      bytes!.set(chunk.data, received);
      received += chunk.data.length;
    }
    if (!first || !bytes || received !== first.totalBytes) {
      throw new SnapshotRejectedError(`snapshot ${version}: stream ended after ${received} of ${first?.totalBytes ?? expectedBytes} bytes`);
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== first.weightsSha256) {
      throw new SnapshotRejectedError(`snapshot ${version}: weights hash to ${sha}, the coordinator says ${first.weightsSha256}; not loaded`);
    }
    const slab = new Float32Array(bytes.length / 4);
    for (let i = 0; i < slab.length; i++) slab[i] = bytes.readFloatLE(i * 4);
    await job.backend.load(slab);
    const loaded = await job.backend.sha256();
    if (loaded !== first.weightsSha256) throw new AgentStateError(`snapshot ${version}: loaded weights hash to ${loaded}, expected ${first.weightsSha256}`);
    await job.replica?.close();
    job.replica = undefined;
    job.sums = undefined;
    job.version = first.version;
    job.headHash = first.entryHash;
    logger.info({ agent: this.id, version, bytes: bytes.length }, 'loaded a snapshot');
  }

  /** Fetches and applies entries until the weights are at `target` (or beyond). */
  private async catchUp(client: CoordinatorClient, target: number): Promise<void> {
    while (this.job!.version < target) {
      const from = this.job!.version;
      const page = await client.fetchLog({ fromVersion: from, toVersion: target });
      if (page.entries.length === 0) throw new TransportError('DATA_LOSS', `fetchLog returned no entries after version ${from}`);
      for (const entry of page.entries) await this.applyEntry(entry);
    }
  }

  /** Verifies an entry against the local chain, applies it to the weights, then records it in the replica. */
  private async applyEntry(entry: LogEntry): Promise<void> {
    const job = this.job!;
    const { backend, replica, accepted } = job;
    if (entry.version <= job.version) return; // already held
    if (entry.version !== job.version + 1) throw new TransportError('DATA_LOSS', `entry ${entry.version} does not follow version ${job.version}`);
    // From the log (broadcasts are checked before they get here): a bad record is the connection's fault.
    const fault = this.recordFault(entry);
    if (fault !== undefined) throw new TransportError('DATA_LOSS', `fetchLog: ${fault}`);
    if (entry.prevHash !== job.headHash) {
      throw new AgentStateError(`update ${entry.version}: prevHash ${entry.prevHash.slice(0, 12)}… does not match the local head ${job.headHash.slice(0, 12)}…`);
    }
    const { hash } = entry;
    if (entry.kind === 'rebase') {
      // The record must be what this replica's own history sums to (known unless a snapshot came since).
      const wrong = job.sums?.mismatch(entry);
      if (wrong !== undefined) throw new AgentStateError(`rebase ${entry.version} does not follow from the entries before it: ${wrong}`);
    }
    await this.applyToWeights(backend, replayStep(entry), accepted);
    job.version = entry.version;
    job.headHash = hash;
    if (job.sums) job.sums.add(entry);
    else if (entry.kind === 'rebase' && (accepted.compactEvery ?? 0) > 0) job.sums = CoefficientSums.startingAt(entry);
    if (replica) {
      const signature = entry.signature === undefined ? {} : { signature: entry.signature };
      const stored = entry.kind === 'rebase'
        ? await replica.appendRebase({ round: entry.round, terms: entry.terms, ...signature })
        : await replica.append({ round: entry.round, lr: entry.lr, decay: entry.decay, terms: entry.terms, ...signature });
      if (stored.hash !== hash) throw new AgentStateError(`update ${entry.version}: replica hash ${stored.hash} differs from ${hash}`);
    }
  }

  /** Serves one Session stream until it closes. */
  private serve(client: CoordinatorClient): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let session: ClientSession | undefined;
      let heartbeatQueued = false;
      const heartbeat = setInterval(() => {
        if (heartbeatQueued) return;
        heartbeatQueued = true;
        this.enqueue(async () => {
          heartbeatQueued = false;
          const { backend, version } = this.job!;
          const busy = this.init.device ? { busy: this.init.device.busy() } : {};
          session?.send({ kind: 'heartbeat', heartbeat: { version, weightsSha256: await backend.sha256(), ...busy } });
        });
      }, this.job!.accepted.heartbeatMs || 2000);
      const finish = (error?: Error): void => {
        clearInterval(heartbeat);
        this.sessionOpen = false;
        this.endSession = undefined;
        // Let the work in hand finish before reconnecting, so updates are applied in order.
        this.work.then(
          () => (error instanceof AgentStateError ? reject(error) : resolve()),
          () => resolve(),
        );
      };
      // Before the call: a stream that closes at once clears it again in finish().
      this.sessionOpen = true;
      session = client.session({
        message: (message: CoordinatorMessage) => this.onMessage(message, client, session!, fail),
        invalid: (error) => logger.warn({ agent: this.id, err: error.message }, 'dropped an invalid message from the coordinator'),
        closed: (error) => finish(error),
      });
      const fail = (error: Error): void => {
        logger.error({ agent: this.id, err: error.message }, 'agent state error; ending the session');
        session!.end();
        finish(error);
      };
      this.endSession = () => session!.end();
    });
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const next = this.work.then(job);
    this.work = next.catch(() => undefined);
    return next;
  }

  private onMessage(message: CoordinatorMessage, client: CoordinatorClient, session: ClientSession, fail: (error: Error) => void): void {
    switch (message.kind) {
      case 'ping':
        session.send({ kind: 'pong', nonce: message.nonce });
        return;
      case 'secAggRoster':
      case 'secAggSharesIn':
      case 'secAggUnmask':
        // Not queued behind the model: the protocol's phases must not wait for a task in hand.
        secureAggregationClient(session, this.id).handle(message);
        return;
      case 'update':
        this.enqueue(async () => {
          const update = message.update;
          // Checked before anything is fetched for it: a forged version number must not send the agent after it.
          const fault = this.recordFault(update);
          if (fault !== undefined) return this.rejectUpdate(client, update, fault);
          // Only a checked record moves the head readiness waits for: a forgery must not hold /readyz at 503.
          this.knownHead = Math.max(this.knownHead, update.version);
          if (update.version > this.job!.version + 1) await this.catchUp(client, update.version - 1);
          if (update.version === this.job!.version + 1 && update.prevHash !== this.job!.headHash) {
            return this.rejectUpdate(client, update, `entry ${update.version}: prevHash ${update.prevHash.slice(0, 12)}… does not match the local head`);
          }
          await this.applyEntry(update);
        }).catch((err: Error) => (err instanceof AgentStateError ? fail(err) : session.end()));
        return;
      case 'jobEnd': {
        const jobEnd = message.jobEnd;
        this.knownHead = Math.max(this.knownHead, jobEnd.version);
        // Queued behind the updates sent before it; then a leaving agent fetches any it missed and ends the session.
        this.enqueue(async () => {
          this.hearEnd(jobEnd);
          if (!this.leaves) return;
          if (this.job!.version < jobEnd.version) {
            await this.catchUp(client, jobEnd.version).catch((err: Error) => {
              if (err instanceof AgentStateError) throw err;
              logger.warn({ agent: this.id, err: err.message, version: this.job!.version }, 'could not fetch the last updates of the ended job');
            });
          }
          session.end();
        }).catch((err: Error) => (err instanceof AgentStateError ? fail(err) : session.end()));
        return;
      }
      case 'task': {
        // Declined at once, not queued: a busy device should not make its coordinator wait for the deadline.
        // Below the agent's own privacy floor: declined whatever the job asks (the agent's data, its terms).
        const floor = this.init.privacyFloor && belowPrivacyFloor(this.init.privacyFloor, message.task.recordPrivacy);
        if (floor) logger.warn({ agent: this.id, round: message.task.round, why: floor }, "the task's record-level DP is below the agent's floor");
        const declined = floor ? 'privacy' : this.init.device?.declineReason(message.task.batchSize);
        this.knownHead = Math.max(this.knownHead, message.task.version);
        this.lastDecline = declined;
        if (declined !== undefined) {
          this.tasksDeclined++;
          logger.info({ agent: this.id, round: message.task.round, reason: declined }, 'declined a task');
          session.send({ kind: 'decline', decline: { round: message.task.round, attempt: message.task.attempt, reason: declined } });
          return;
        }
        // A secure round starts with fresh keys, sent at once: the coordinator's key phase need not wait for the model.
        if (message.task.secureAggregation) secureAggregationClient(session, this.id).begin(message.task);
        const receivedAt = Date.now();
        this.enqueue(() => this.runTask(message.task, receivedAt, client, session)).catch((err: Error) =>
          err instanceof AgentStateError ? fail(err) : logger.warn({ agent: this.id, err: err.message }, 'task failed'),
        );
        return;
      }
    }
  }

  private nextBatch(size: number): BatchData {
    const lazy = typeof this.init.data === 'function';
    const data = typeof this.init.data === 'function' ? this.init.data() : this.init.data;
    const make = (epoch: number) =>
      data.batches(size, { seed: this.init.dataSeed ?? 0, epoch, dropLast: data.size >= size });
    if (!this.batches || this.batches.size !== size) this.batches = { size, epoch: 0, index: 0, iterator: undefined };
    const at = this.batches;
    let iterator = at.iterator;
    if (!iterator) {
      // Provided data may be rebuilt between tasks: resume from the position, not from an iterator over old data.
      iterator = make(at.epoch);
      for (let skipped = 0; skipped < at.index && !iterator.next().done; skipped++);
    }
    let next = iterator.next();
    if (next.done) {
      at.epoch++;
      at.index = 0;
      iterator = make(at.epoch);
      next = iterator.next();
    }
    at.index++;
    // Holding the iterator would hold the data (and a batch buffer) of every agent a simulation ever asked.
    at.iterator = lazy ? undefined : iterator;
    return next.value!;
  }

  private async runTask(task: Task, receivedAt: number, client: CoordinatorClient, session: ClientSession): Promise<void> {
    const job = this.job!;
    const { backend, accepted } = job;
    if (task.jobId !== accepted.jobId) return;
    if (Date.now() - receivedAt > task.deadlineMs) return; // its round has closed; do not waste the work
    if (job.version < task.version) await this.catchUp(client, task.version);
    if (job.version !== task.version) return; // a stale task: the weights moved on
    const batch = this.nextBatch(task.batchSize);
    // Record-level DP (shared/privacy/record-dp.ts): clipped per example, noised, divided by the task's batch size.
    const dp = task.recordPrivacy;
    const evaluations = await backend.evaluate(task.seeds, task.epsilon, batch, undefined, dp ? { clip: dp.clip, noiseMultiplier: dp.noiseMultiplier, batchSize: task.batchSize } : undefined);
    if (evaluations.some((e) => !e.valid)) {
      logger.warn({ agent: this.id, round: task.round }, 'a loss was not finite; not answering the task');
      return;
    }
    this.tasksDone++;
    // Private mode releases g alone: no losses, and the batch size the accountant assumes as the sample count.
    const privateMode = dp?.privateMode === true;
    if (task.secureAggregation) {
      // Secure aggregation: the values leave the device only masked, once the neighbours' shares are in.
      const losses = privateMode ? { plus: [], minus: [] } : { plus: evaluations.map((e) => e.lossPlus), minus: evaluations.map((e) => e.lossMinus) };
      secureAggregationClient(session, this.id).submit(task, evaluations.map((e) => e.g), losses.plus, losses.minus, privateMode ? task.batchSize : batch.size);
      return;
    }
    session.send({
      kind: 'result',
      result: {
        round: task.round,
        attempt: task.attempt,
        seeds: evaluations.map((e) => e.seed),
        g: evaluations.map((e) => e.g),
        ...(privateMode ? {} : { lossPlus: evaluations.map((e) => e.lossPlus), lossMinus: evaluations.map((e) => e.lossMinus) }),
        sampleCount: privateMode ? task.batchSize : batch.size,
      },
    });
  }
}
