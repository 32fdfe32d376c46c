/**
 * The round loop: ONE loop that runs the job's rounds in order. A round: wait for enough free agents, ask the
 * Strategy who evaluates which seeds, send each a Task, collect answers until the attempt's outcome is decided
 * (quorum reached, everyone asked answered, the quorum unreachable, or the deadline passed), aggregate, append
 * to the durable log, and only then broadcast. Without a quorum the round is retried with fresh seeds, up to
 * maxAttempts. With secure aggregation, collecting answers is the four phases of a SecureRound instead. Once no
 * entry can be appended any more (every round logged, or stop({ endJob: true })), the agents hear that the job
 * ended.
 */
import type { UpdateLog } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import { secureSpec } from '../shared/privacy/secure-sum.js';
import type { AgentMessage, Decline, JobEnd, JobEndReason, SecureAggregationSpec, TaskConfig } from '../shared/transport/index.js';
import { taskConfigSchema } from '../shared/transport/messages.js';
import type { AgentRecord, AgentRegistry } from './agent-registry.js';
import type { Broadcaster } from './broadcaster.js';
import { OpenRound } from './open-round.js';
import type { RoundOptions } from './options.js';
import type { Replica } from './replica.js';
import { reject } from './result-validator.js';
import { SecureRound, type SecureAggregationOptions, type SecureAggregationTarget } from './secure-aggregation.js';
import type { AggregatedUpdate, Assignment, RoundContext, RoundFailure, Strategy } from './strategy.js';

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
  /** The strategy's own figures for the round (AggregatedUpdate.metrics), when it gave any. */
  metrics?: Readonly<Record<string, number>>;
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

/** Secure aggregation as the round loop runs it: its options and the strategy's sum side. */
export interface SecureAggregationSetup {
  options: SecureAggregationOptions;
  target: SecureAggregationTarget;
}

export interface RoundLoopInit {
  log: UpdateLog;
  options: RoundOptions;
  strategy: Strategy;
  agents: AgentRegistry;
  replica: Replica;
  broadcaster: Broadcaster;
  secure: SecureAggregationSetup | undefined;
}

type Outcome = 'committed' | 'failed' | 'stopped';

/** What an attempt's answers came to: the update, and who contributed, for the round's report. */
interface Collected {
  update: AggregatedUpdate;
  /** Agents whose answers the update holds (counted as accepted). */
  accepted: readonly string[];
  /** Asked agents that disconnected (or could not be sent the task) before answering. */
  dropped: number;
  scalars: RoundReport['scalars'];
}

export class RoundLoop {
  private readonly log: UpdateLog;
  private readonly options: RoundOptions;
  private readonly strategy: Strategy;
  private readonly agents: AgentRegistry;
  private readonly replica: Replica;
  private readonly broadcaster: Broadcaster;
  private readonly secure: SecureAggregationSetup | undefined;
  private readonly roundListeners = new Set<(report: RoundReport) => void>();
  private open: OpenRound | undefined;
  /** The secure round in progress: its phases take the agents' secure-aggregation messages. */
  private secureRound: SecureRound | undefined;
  private stopping = false;
  /** stop({ endJob: true }) asked for the job to end: agents hear it once the loop is out of its round. */
  private endRequested = false;
  /** Set once the job has ended (every round logged, or ended by the operator); told to every agent. */
  private ended: JobEnd | undefined;
  private running: Promise<RunReport> | undefined;

  constructor(init: RoundLoopInit) {
    this.log = init.log;
    this.options = init.options;
    this.strategy = init.strategy;
    this.agents = init.agents;
    this.replica = init.replica;
    this.broadcaster = init.broadcaster;
    this.secure = init.secure;
  }

  /** The round the loop runs next: the one after the log's last entry. */
  get nextRound(): number {
    const last = this.log.version > 0 ? this.log.entries(this.log.version - 1)[0]! : undefined;
    return last ? last.round + 1 : 0;
  }

  /** The attempt collecting results now (settled ones linger until the loop moves on); undefined between attempts. */
  get openRound(): OpenRound | undefined {
    return this.open;
  }

  /** True from stop() until the next run(). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** Calls `listener` after every committed round; returns its unsubscribe. */
  onRound(listener: (report: RoundReport) => void): () => void {
    this.roundListeners.add(listener);
    return () => this.roundListeners.delete(listener);
  }

  /** Runs rounds until options.rounds are in the log or stop() is called. Rejects with RoundFailedError. */
  run(): Promise<RunReport> {
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves once the loop is not running (at once when it is not), whether it ended well or not. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
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
    this.agents.notify();
  }

  /** How the job ended, once it has (every round in the log, or stop({ endJob: true })). */
  get jobEnd(): JobEnd | undefined {
    return this.ended;
  }

  /** The job has ended, or its log already holds every round: a Join is told so instead of being given work. */
  endOfJob(): JobEnd | undefined {
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

  // ---- what the agents send into a round ----

  /** Whether `message` answers what the open attempt (or secure phase) asked `agentId` for: then it costs no message budget. */
  expects(agentId: string, message: AgentMessage): boolean {
    if (this.secureRound?.expects(agentId, message)) return true;
    const answer = message.kind === 'result' ? message.result : message.kind === 'decline' ? message.decline : undefined;
    if (answer === undefined) return false;
    const open = this.open;
    return open !== undefined && open.awaits(agentId) && answer.round === open.round && answer.attempt === open.attempt;
  }

  /**
   * An agent said it will not evaluate its task (busy device, or a batch over its memory budget): counted as a
   * decline, not a fault, and the round stops waiting for it. A busy agent is left out of sampling until a
   * heartbeat says it is free again.
   */
  onDecline(agent: AgentRecord, decline: Decline): void {
    if (decline.reason === 'busy') agent.capabilities = { ...agent.capabilities, busy: true };
    const secure = this.secureRound;
    if (secure && decline.round === secure.round && decline.attempt === secure.attempt) secure.drop(agent.id);
    const open = this.open;
    if (!open || open.settled || decline.round !== open.round || decline.attempt !== open.attempt || !open.awaits(agent.id)) return;
    agent.stats.declined++;
    open.declined.add(agent.id);
    logger.info({ agent: agent.id, round: decline.round, reason: decline.reason }, 'agent declined its task');
    open.check();
  }

  /** A secure-aggregation message: to the secure round in progress; late (counted) without one, rejected when it breaks the protocol. */
  onSecureMessage(agent: AgentRecord, message: AgentMessage): void {
    const refused = this.secureRound ? this.secureRound.handle(agent.id, message) : 'late';
    if (refused === 'late') agent.stats.late++;
    else if (refused !== undefined) reject(agent, 'secure-aggregation', refused);
  }

  /** The agent's session closed: the attempt (or secure phase) stops waiting for it. */
  onSessionClosed(agentId: string): void {
    this.secureRound?.drop(agentId);
    const open = this.open;
    if (open && open.awaits(agentId)) {
      open.gone.add(agentId);
      open.check();
    }
  }

  // ---- the loop ----

  private async loop(): Promise<RunReport> {
    this.stopping = false;
    let roundsRun = 0;
    let failedAttempts = 0;
    while (!this.stopping && this.nextRound < this.options.rounds) {
      const round = this.nextRound;
      let committed = false;
      for (let attempt = 0; attempt < this.options.maxAttempts && !this.stopping; attempt++) {
        if (this.strategy.shouldEndJob?.({ round, attempt, version: this.log.version })) {
          logger.info({ round, attempt }, 'the strategy ended the job');
          this.stop({ endJob: true });
          break;
        }
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

  /** The strategy's config for one agent's task, checked against the wire's bounds; undefined when it gives none. */
  private taskConfig(context: RoundContext, agentId: string): TaskConfig | undefined {
    const config = this.strategy.configureTask?.(context, agentId);
    if (config === undefined) return undefined;
    const parsed = taskConfigSchema.safeParse(config);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = ['task.config', ...issue.path.map(String)].join('.');
      throw new TypeError(`strategy.configureTask: ${field} ${issue.message} (agent ${agentId}, round ${context.round})`);
    }
    return Object.keys(parsed.data).length > 0 ? Object.freeze({ ...parsed.data }) : undefined;
  }

  private quorumFor(asked: number): number {
    return Math.min(this.options.quorum ?? this.agentsPerRound, asked);
  }

  private async attemptRound(round: number, attempt: number): Promise<Outcome> {
    const started = performance.now();
    const needed = this.options.quorum ?? this.agentsPerRound;
    const connected = await this.agents.waitForAvailable(needed, this.options.waitForAgentsMs, () => this.stopping);
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
    // Every agent's config is asked for and checked before any task is sent, so a bad one sends nothing.
    const configs = new Map(sendable.map(({ agentId }) => [agentId, this.taskConfig(context, agentId)]));
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
          ...(this.options.estimator !== 'central' ? { estimator: this.options.estimator } : {}),
          ...(configs.get(agentId) ? { config: configs.get(agentId)! } : {}),
        },
      });
      if (!sent) open.gone.add(agentId);
    }
    // The collection phase: plain Results, or the four phases of secure aggregation. Either way the loop then
    // closes the attempt the same way and, unless stopped, asks the phase for the update its answers add up to.
    const conclude = spec ? await this.collectSecure(open, context, sendable, spec) : await this.collectResults(open, context, sendable);
    this.open = undefined;
    for (const agentId of open.gone) this.agents.get(agentId)!.stats.dropped++;
    if (this.stopping) return 'stopped';
    const answers = conclude();
    if (!answers) return 'failed';
    return this.commitRound(context, answers.update, { ...answers, asked: sendable.length, started });
  }

  /**
   * Collects plain Results until the attempt's outcome is decided. Its conclusion: with a quorum, the Strategy
   * aggregates the results (told which asked agents failed, and why); null without one, or when the strategy
   * makes nothing of them.
   */
  private async collectResults(open: OpenRound, context: RoundContext, sendable: readonly Assignment[]): Promise<() => Collected | null> {
    open.check();
    await open.done;
    return () => {
      const { round, attempt } = context;
      if (open.results.size < open.quorum) {
        logger.warn({ round, attempt, results: open.results.size, quorum: open.quorum }, 'round closed without quorum; retrying with fresh seeds');
        return null;
      }
      const results = [...open.results.values()];
      const failures = failuresOf(open, sendable, (agentId) => open.results.has(agentId));
      const update = this.strategy.aggregate(context, results, failures);
      if (!update || update.terms.length === 0) return null;
      const scalars = results.map(({ agentId, seeds, g }) => ({ agentId, seeds, g }));
      return { update, accepted: results.map((r) => r.agentId), dropped: open.gone.size, scalars };
    };
  }

  /**
   * Secure aggregation's collection phase (secure-aggregation.ts): its four phases replace collecting Results,
   * and only the unmasked sum reaches the strategy, with the asked agents whose masked input is not in it as the
   * failures (one the protocol dropped because a phase's message could not be sent counts as dropped). Its
   * conclusion is null on a failure (too few survivors, fewer than t shares of a secret), which fails the
   * attempt like a round without quorum.
   */
  private async collectSecure(open: OpenRound, context: RoundContext, sendable: readonly Assignment[], spec: SecureAggregationSpec): Promise<() => Collected | null> {
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
    return () => {
      if (!outcome.ok) {
        logger.warn({ round, attempt, reason: outcome.reason }, 'secure aggregation failed; retrying with fresh seeds');
        return null;
      }
      const survivors = new Set(outcome.survivors);
      const failures = failuresOf(open, sendable, (agentId) => survivors.has(agentId), (agentId) => secure.wasDropped(agentId));
      const update = this.secure!.target.aggregate(context, outcome.sums, failures);
      if (!update || update.terms.length === 0) return null;
      const dropped = sendable.length - outcome.survivors.length - open.declined.size;
      return { update, accepted: outcome.survivors, dropped, scalars: [] };
    };
  }

  /** Appends a round's update (durable first), then broadcasts it and reports the round to its listeners. */
  private async commitRound(
    context: RoundContext,
    update: AggregatedUpdate,
    answers: { accepted: readonly string[]; asked: number; dropped: number; scalars: RoundReport['scalars']; started: number },
  ): Promise<'committed'> {
    const { round, attempt } = context;
    const { started } = answers;
    const metrics = update.metrics === undefined ? undefined : checkedMetrics(update.metrics);
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
      connected: this.agents.connectedAgents().length,
      lr: update.lr,
      trainLoss: update.trainLoss,
      wallMs: performance.now() - started,
      scalars: answers.scalars,
      terms: entry.terms,
      ...(metrics ? { metrics } : {}),
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
}

/**
 * The asked agents whose answer is not in what the strategy is handed, and why: its session closed or its task
 * was not sent (or, in a secure round, the protocol dropped it); it declined; else it had not answered in time,
 * or its answer was refused.
 */
function failuresOf(
  open: OpenRound,
  sendable: readonly Assignment[],
  answered: (agentId: string) => boolean,
  droppedElsewhere: (agentId: string) => boolean = () => false,
): RoundFailure[] {
  return sendable
    .filter(({ agentId }) => !answered(agentId))
    .map(({ agentId }): RoundFailure => ({
      agentId,
      reason: open.gone.has(agentId) ? 'dropped' : open.declined.has(agentId) ? 'declined' : droppedElsewhere(agentId) ? 'dropped' : 'unanswered',
    }));
}

/** A copy of a strategy's round metrics, each checked to be a finite number under a non-empty name. */
function checkedMetrics(metrics: Readonly<Record<string, number>>): Readonly<Record<string, number>> {
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new TypeError('strategy.aggregate: metrics must be an object of numbers');
  const copy: Record<string, number> = {};
  for (const [name, value] of Object.entries(metrics)) {
    if (name === '') throw new TypeError('strategy.aggregate: metrics names must be non-empty');
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`strategy.aggregate: metrics.${name} must be a finite number, got ${String(value)}`);
    copy[name] = value;
  }
  return copy;
}
