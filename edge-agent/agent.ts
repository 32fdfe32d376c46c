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
 *
 * This file composes the agent's rooms: connection.ts (connect, reconnect, backoff), catch-up.ts (log or
 * snapshot after a Join), chain-follower.ts (the weights on the coordinator's hash chain), heartbeat.ts and
 * task-runner.ts (with the evaluation middleware of evaluation.ts). None of them imports a `node:` module, so
 * the same agent runs in a browser (edge-agent/browser/); Node-only parts come in through AgentInit (the
 * backend, the device budget) or live in shared/ modules that the browser build swaps.
 */
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
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
  type Transport,
} from '../shared/transport/index.js';
import type { PrivacyFloor } from '../shared/privacy/record-dp.js';
import { catchUpAfterJoin, type CatchUpRecord } from './catch-up.js';
import { AgentStateError, ChainFollower, logVerifier } from './chain-follower.js';
import { Connection, type ConnectionProgress } from './connection.js';
import type { DeviceBudget } from './device-budget.js';
import type { EvaluationMiddleware } from './evaluation.js';
import { startHeartbeats } from './heartbeat.js';
import type { MezoBackend } from './mezo-backend.js';
import { secureAggregationClient } from './secure-aggregation-client.js';
import { TaskRunner } from './task-runner.js';

export { chooseCatchUp, SnapshotRejectedError, type CatchUpPath, type CatchUpRecord } from './catch-up.js';
export { AgentStateError } from './chain-follower.js';
export { CoordinatorUnreachableError } from './connection.js';
export type { EvaluationContext, Evaluation, EvaluationMiddleware } from './evaluation.js';

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
  /**
   * Layers around each task's evaluation, outermost first (evaluation.ts): each gets the context and the rest
   * of the chain, and may change what the answer is made of or throw to leave the task unanswered. Default none.
   */
  evaluation?: readonly EvaluationMiddleware[];
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

export class Agent {
  readonly id: string;
  private readonly init: AgentInit;
  private job: ChainFollower | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private exited: AgentExit | undefined;
  /** The end of the job the agent holds, once the coordinator has said so (cleared when that job resumes). */
  private heardEnd: JobEnd | undefined;
  private endSession: (() => void) | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private readonly connection: Connection;
  private readonly tasks: TaskRunner;
  /** Counted across jobs: catch-ups (catch-up.ts) and rejected broadcasts (chain-follower.ts). */
  private readonly counters = { lastCatchUp: undefined as CatchUpRecord | undefined, snapshotsRejected: 0, updatesRejected: 0, lastResyncAt: -Infinity };
  /** For health: a Session stream is open, the newest log version heard of, how run() ended. */
  private sessionOpen = false;
  private knownHead = 0;
  private failure: Error | undefined;

  constructor(init: AgentInit) {
    this.init = init;
    this.id = init.agentId;
    this.tasks = new TaskRunner({
      agentId: init.agentId,
      data: init.data,
      dataSeed: init.dataSeed,
      device: init.device,
      privacyFloor: init.privacyFloor,
      evaluation: init.evaluation,
    });
    this.connection = new Connection({
      agentId: init.agentId,
      token: init.token,
      transport: init.transport,
      reconnect: init.reconnect,
      giveUpAfterMs: init.giveUpAfterMs,
      stopped: () => this.stopped,
      attempt: (client, progress) => this.attempt(client, progress),
      recover: (err) => this.recover(err),
    });
  }

  get state(): AgentState {
    return {
      version: this.job?.version ?? 0,
      headHash: this.job?.headHash,
      tasksDone: this.tasks.tasksDone,
      reconnects: this.connection.reconnects,
      lastCatchUp: this.counters.lastCatchUp,
      snapshotsRejected: this.counters.snapshotsRejected,
      updatesRejected: this.counters.updatesRejected,
      tasksDeclined: this.tasks.tasksDeclined,
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
    const lastDecline = this.tasks.lastDecline;
    if (lastDecline !== undefined && lastDecline !== 'busy') return not(`declined the last task: ${lastDecline}`);
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
    this.connection.wake();
  }

  /** stop(), wait for run(), then release the model and the log replica. */
  async close(): Promise<void> {
    this.stop();
    await this.running?.catch(() => undefined);
    await this.work.catch(() => undefined);
    await this.job?.close();
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
    this.tasks.reset();
    this.counters.lastCatchUp = undefined;
    this.heardEnd = undefined;
    await job.close();
    logger.info({ agent: this.id, jobId: job.accepted.jobId }, 'released the ended job');
  }

  private async loop(): Promise<void> {
    if ((await this.connection.run()) === 'done' && this.heardEnd) {
      this.exited = { reason: 'job-ended', jobEnd: this.heardEnd };
      return;
    }
    this.exited = { reason: 'stopped' };
  }

  /** One connection: join, set up or resume the job, catch up, then serve the session. True when the agent leaves. */
  private async attempt(client: CoordinatorClient, progress: ConnectionProgress): Promise<boolean> {
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
    progress.reached();
    this.knownHead = accepted.currentVersion;
    await this.setUp(accepted, client);
    // A stored replica replayed on the first join: ask again, so the byte counts are from the version held.
    if (this.job!.version !== request.versionHeld) {
      accepted = await client.join(joinRequest());
      this.job!.accepted = accepted;
      this.knownHead = accepted.currentVersion;
    }
    await catchUpAfterJoin(this.id, this.job!, client, accepted, this.counters);
    progress.joined();
    if (accepted.jobEnd) this.hearEnd(accepted.jobEnd);
    else if (this.heardEnd) this.heardEnd = undefined; // the same job resumed (a restart with more rounds)
    if (this.stopped) return false;
    // Leaving: the weights are at the job's final version; no session is needed.
    if (!(accepted.jobEnd && this.leaves)) await this.serve(client);
    progress.reached();
    return this.heardEnd !== undefined && this.leaves && !this.stopped;
  }

  /** A failed attempt: rethrows what a reconnect cannot fix; drops an ended job the coordinator no longer serves. */
  private async recover(err: unknown): Promise<void> {
    if (err instanceof AgentStateError || isPermanent(err) || (err instanceof TransportError && err.code === 'FAILED_PRECONDITION' && !this.job)) {
      logger.error({ agent: this.id, err: (err as Error).message }, 'agent stopped: cannot continue');
      throw err;
    }
    // The job held ended and the coordinator now refuses that state (another job's log is shorter): start afresh.
    if (this.heardEnd && err instanceof TransportError && err.code === 'FAILED_PRECONDITION') await this.releaseJob();
  }

  /** First join: build the backend and the log replica (replaying a stored one). Later joins: same job only. */
  private async setUp(accepted: JoinAccepted, client: CoordinatorClient): Promise<void> {
    if (this.job) {
      const held = this.job.accepted;
      const sameKey = (accepted.logPublicKey ?? null) === (this.job.verifier?.publicKey ?? null);
      // After the end, a coordinator with another log key runs another job, even under the same id and genesis.
      if (held.jobId === accepted.jobId && held.genesisHash === accepted.genesisHash && (sameKey || !this.heardEnd)) {
        this.job.verifier = logVerifier(accepted, this.init.logPublicKey, this.job.verifier?.publicKey);
        this.job.accepted = accepted;
        return;
      }
      if (!this.heardEnd) {
        throw new AgentStateError(`the coordinator now runs job ${accepted.jobId} (genesis ${accepted.genesisHash.slice(0, 12)}…), not ${held.jobId}`);
      }
      // The job held has ended and this is the next one: start over from the base weights.
      await this.releaseJob();
    }
    this.job = await ChainFollower.open({
      agentId: this.id,
      accepted,
      client,
      prepared: this.init.prepared,
      createBackend: this.init.createBackend,
      logPublicKey: this.init.logPublicKey,
      stateDir: this.init.stateDir,
      keepLogReplica: this.init.keepLogReplica,
    });
  }

  /** Serves one Session stream until it closes. */
  private serve(client: CoordinatorClient): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let session: ClientSession | undefined;
      const stopHeartbeats = startHeartbeats(this.job!.accepted.heartbeatMs || 2000, {
        job: () => this.job!,
        busy: this.init.device ? () => this.init.device!.busy() : undefined,
        enqueue: (work) => this.enqueue(work),
        send: (message) => session?.send(message),
      });
      const finish = (error?: Error): void => {
        stopHeartbeats();
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
          const job = this.job!;
          // Checked before anything is fetched for it: a forged version number must not send the agent after it.
          const fault = job.recordFault(update);
          if (fault !== undefined) return job.rejectUpdate(client, update, fault, this.counters);
          // Only a checked record moves the head readiness waits for: a forgery must not hold /readyz at 503.
          this.knownHead = Math.max(this.knownHead, update.version);
          await job.follow(client, update, this.counters);
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
            await this.job!.catchUp(client, jobEnd.version).catch((err: Error) => {
              if (err instanceof AgentStateError) throw err;
              logger.warn({ agent: this.id, err: err.message, version: this.job!.version }, 'could not fetch the last updates of the ended job');
            });
          }
          session.end();
        }).catch((err: Error) => (err instanceof AgentStateError ? fail(err) : session.end()));
        return;
      }
      case 'task': {
        this.knownHead = Math.max(this.knownHead, message.task.version);
        if (this.tasks.declined(message.task, session)) return;
        // A secure round starts with fresh keys, sent at once: the coordinator's key phase need not wait for the model.
        if (message.task.secureAggregation) secureAggregationClient(session, this.id).begin(message.task);
        const receivedAt = Date.now();
        this.enqueue(() => this.tasks.run(this.job!, message.task, receivedAt, client, session)).catch((err: Error) =>
          err instanceof AgentStateError ? fail(err) : logger.warn({ agent: this.id, err: err.message }, 'task failed'),
        );
        return;
      }
    }
  }
}
