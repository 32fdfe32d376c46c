/**
 * Prometheus metrics of a coordinator (prom-client), served over HTTP by dashboard/server.ts with /healthz and
 * /readyz (and, with a RunMonitor, the dashboard). Round metrics are observed as rounds commit; per-agent
 * counters, traffic and replay lag are read from the coordinator when Prometheus scrapes, so the round loop
 * pays nothing for them. Names follow Prometheus conventions: base units (seconds, bytes) and `_total` on
 * counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Traffic } from '../shared/transport/index.js';
import type { AgentStatus, RejectionReason, RoundReport } from './coordinator.js';

/** What the metrics read from a coordinator (a Coordinator is one; the optional parts add metrics). */
export interface MetricsSource {
  agentStatuses(): AgentStatus[];
  /** Encoded bytes per agent (transport traffic). */
  traffic?(): ReadonlyMap<string, Traffic>;
  /**
   * The log, for the head version agents' replay lag is measured from, and the foreign records its storage
   * met and left out (a JetStream stream that others published on).
   */
  readonly log?: { readonly version: number; readonly ignoredRecords?: number };
  /** The coordinator's weights hash at a version, to find replicas that disagree. */
  weightsSha256At?(version: number): string | undefined;
  /** Refused callers, in totals (never labelled by caller: anyone may claim any id). */
  authFailures?(): { failed: number; limited: number; refusedCalls: number };
  /** Session messages from agents dropped as forged or replayed (a MAC or sequence number that did not hold). */
  forgedMessages?(): number;
}

/** Quantiles of the agents' replay lag reported by mezo_agents_replay_lag_versions. */
export const LAG_QUANTILES = [0.5, 0.9, 0.99, 1] as const;

/** The q-quantile of ascending `sorted` (nearest rank); 0 for none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Head version minus the version each connected agent last reported (never negative), ascending. */
export function replayLags(statuses: readonly AgentStatus[], head: number): number[] {
  return statuses.filter((a) => a.connected).map((a) => Math.max(0, head - a.version)).sort((a, b) => a - b);
}

/** Whether an agent's reported weights disagree with the coordinator's at its version (unknown: false). */
export function weightsDisagree(source: Pick<MetricsSource, 'weightsSha256At'>, status: AgentStatus): boolean {
  if (status.weightsSha256 === undefined || !source.weightsSha256At) return false;
  // The hash was reported at the heartbeat's version; the agent may have moved on since.
  const ours = source.weightsSha256At(status.weightsVersion ?? status.version);
  return ours !== undefined && ours !== status.weightsSha256;
}

type Totals = Record<'tasks' | 'accepted' | 'late' | 'dropped' | 'divergent' | 'rateLimited' | 'declined', number>;

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly rounds: Counter;
  private readonly roundDuration: Histogram;
  private readonly roundResults: Gauge;
  private readonly roundAsked: Gauge;
  private readonly trainLoss: Gauge;
  private readonly learningRate: Gauge;
  private readonly logVersion: Gauge;
  private readonly roundDropped: Gauge;
  private readonly signAgreement: Gauge;
  private readonly evalAccuracy: Gauge;
  private readonly evalLoss: Gauge;
  private readonly privacyEpsilon: Gauge;
  private readonly privacyDelta: Gauge;
  private readonly recordPrivacyEpsilon: Gauge;
  private readonly recordPrivacyDelta: Gauge;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mezo_process_' });
    // prom-client's defaults include gauges named *_total (active handles/requests/resources); `_total` belongs
    // to counters, and each has a per-type gauge without the suffix that carries the same information.
    for (const metric of this.registry.getMetricsAsArray()) {
      if (metric.name.endsWith('_total') && !(metric instanceof Counter)) this.registry.removeSingleMetric(metric.name);
    }
    this.rounds = new Counter({ name: 'mezo_rounds_total', help: 'Rounds committed to the update log', registers });
    this.roundDuration = new Histogram({
      name: 'mezo_round_duration_seconds',
      help: 'Wall time of a committed round, from tasks sent to the update appended',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.roundResults = new Gauge({ name: 'mezo_round_results', help: 'Results merged in the last committed round', registers });
    this.roundAsked = new Gauge({ name: 'mezo_round_agents_asked', help: 'Agents asked in the last committed round', registers });
    this.trainLoss = new Gauge({ name: 'mezo_round_train_loss', help: 'Mean of (L+ + L-)/2 over the last round\'s results', registers });
    this.learningRate = new Gauge({ name: 'mezo_learning_rate', help: 'Learning rate of the last committed round', registers });
    this.logVersion = new Gauge({ name: 'mezo_log_version', help: 'Entries in the update log (the model version)', registers });
    this.roundDropped = new Gauge({ name: 'mezo_round_agents_dropped', help: 'Agents asked in the last committed round that disconnected before answering', registers });
    // Registered on their first value: a gauge with no value would read 0, which looks like a measurement
    // (0 % accuracy) rather than "no held-out evaluation" or "no seed had two agents".
    this.signAgreement = new Gauge({
      name: 'mezo_round_sign_agreement_ratio',
      help: 'Fraction of the last round\'s scalars whose sign matches their seed\'s aggregate (seeds evaluated by 2+ agents)',
      registers: [],
    });
    this.evalAccuracy = new Gauge({ name: 'mezo_eval_accuracy_ratio', help: 'Held-out accuracy of the latest evaluation', registers: [] });
    this.evalLoss = new Gauge({ name: 'mezo_eval_loss', help: 'Held-out loss of the latest evaluation', registers: [] });
    // Only a job with central DP has a privacy budget: absent otherwise, rather than a misleading 0.
    this.privacyEpsilon = new Gauge({ name: 'mezo_privacy_epsilon', help: 'Central DP: epsilon spent so far at mezo_privacy_delta', registers: [] });
    this.privacyDelta = new Gauge({ name: 'mezo_privacy_delta', help: 'Central DP: the delta epsilon is accounted at', registers: [] });
    this.recordPrivacyEpsilon = new Gauge({ name: 'mezo_record_privacy_epsilon', help: "Record-level DP: epsilon per agent's data (the smallest shard) so far, at mezo_record_privacy_delta", registers: [] });
    this.recordPrivacyDelta = new Gauge({ name: 'mezo_record_privacy_delta', help: 'Record-level DP: the delta epsilon is accounted at', registers: [] });

    const statuses = (): AgentStatus[] => source.agentStatuses();
    new Gauge({
      name: 'mezo_agents_connected',
      help: 'Agents with an open session',
      registers,
      collect() {
        this.set(statuses().filter((a) => a.connected).length);
      },
    });
    new Gauge({
      name: 'mezo_agents_busy',
      help: 'Connected agents that report their device busy (they are not sampled)',
      registers,
      collect() {
        this.set(statuses().filter((a) => a.connected && a.capabilities.busy === true).length);
      },
    });
    new Gauge({
      name: 'mezo_agents_known',
      help: 'Agents that have joined since the coordinator started',
      registers,
      collect() {
        this.set(statuses().length);
      },
    });
    new Gauge({
      name: 'mezo_agents_replay_lag_versions',
      help: 'Versions connected agents are behind the log head (head minus the version they last reported), by quantile',
      labelNames: ['quantile'],
      registers,
      collect() {
        const lags = replayLags(statuses(), source.log?.version ?? 0);
        for (const q of LAG_QUANTILES) this.set({ quantile: String(q) }, quantile(lags, q));
      },
    });
    new Gauge({
      name: 'mezo_replicas_divergent',
      help: 'Connected agents whose reported weights hash differs from the coordinator\'s at the same version',
      registers,
      collect() {
        this.set(statuses().filter((a) => a.connected && weightsDisagree(source, a)).length);
      },
    });
    /** A counter whose value the coordinator keeps as running totals: a scrape reports them as they stand. */
    const summed = (name: string, help: string, sum: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(sum());
        },
      });
    };
    const traffic = (name: string, help: string, field: keyof Traffic): void =>
      summed(name, help, () => {
        let sum = 0;
        for (const t of source.traffic?.().values() ?? []) sum += t[field];
        return sum;
      });
    traffic('mezo_transport_received_bytes_total', 'Encoded message bytes agents sent to the coordinator (up)', 'bytesUp');
    traffic('mezo_transport_sent_bytes_total', 'Encoded message bytes the coordinator sent to agents (down)', 'bytesDown');
    const total = (name: string, help: string, field: keyof Totals): void =>
      summed(name, help, () => statuses().reduce((sum, a) => sum + a.stats[field], 0));
    total('mezo_tasks_sent_total', 'Tasks sent to agents', 'tasks');
    total('mezo_results_accepted_total', 'Results merged into a round', 'accepted');
    total('mezo_results_late_total', 'Results that arrived after their round closed (dropped)', 'late');
    total('mezo_tasks_dropped_total', 'Tasks whose agent disconnected before answering', 'dropped');
    total('mezo_tasks_declined_total', 'Tasks agents declined (device busy, or the batch over their memory budget)', 'declined');
    total('mezo_heartbeats_divergent_total', 'Heartbeats whose weights hash differed from the coordinator\'s', 'divergent');
    total('mezo_rate_limited_total', 'Calls refused because an agent exceeded its message budget', 'rateLimited');
    if (source.authFailures) {
      const auth = (): { failed: number; limited: number; refusedCalls: number } => source.authFailures!();
      summed('mezo_auth_failures_total', 'Calls that failed authentication (bad token, unlisted or revoked agent)', () => auth().failed);
      summed('mezo_auth_limited_total', 'Calls refused unchecked because their address exceeded its authentication failure budget', () => auth().limited);
      summed('mezo_transport_refused_calls_total', 'Calls the coordinator refused, whatever the reason', () => auth().refusedCalls);
    }
    // Attacks the signatures and MACs turned away, as plain totals (never per claimed id).
    if (source.log) {
      const log = source.log;
      summed('mezo_log_ignored_records_total', 'Records on the log\'s storage left out of the log: garbled, unsigned, foreign or of another job', () => log.ignoredRecords ?? 0);
    }
    if (source.forgedMessages) {
      const forged = source.forgedMessages.bind(source);
      summed('mezo_transport_forged_messages_total', 'Session messages from agents dropped because their MAC or sequence number did not hold (forged or replayed)', () => forged());
    }
    new Counter({
      name: 'mezo_results_rejected_total',
      help: 'Results rejected, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const byReason = new Map<RejectionReason, number>();
        for (const agent of statuses()) {
          for (const [reason, count] of Object.entries(agent.stats.rejections) as Array<[RejectionReason, number]>) {
            byReason.set(reason, (byReason.get(reason) ?? 0) + count);
          }
        }
        for (const [reason, count] of byReason) this.inc({ reason }, count);
      },
    });
  }

  /** Call from the coordinator's onRound hook. */
  observeRound(report: RoundReport): void {
    this.rounds.inc();
    this.roundDuration.observe(report.wallMs / 1000);
    this.roundResults.set(report.results);
    this.roundAsked.set(report.asked);
    this.roundDropped.set(report.dropped);
    if (Number.isFinite(report.trainLoss)) this.trainLoss.set(report.trainLoss);
    this.learningRate.set(report.lr);
    this.logVersion.set(report.version);
  }

  /** The last round's sign agreement (RunMonitor); null leaves the gauge as it was (absent until a first value). */
  observeSignAgreement(agreement: number | null): void {
    if (agreement !== null) this.setLazily(this.signAgreement, agreement);
  }

  /** A held-out evaluation (RunMonitor.recordEvaluation); the gauges appear with the first value. */
  observeEvaluation(evaluation: { accuracy: number | null; loss: number | null }): void {
    if (evaluation.accuracy !== null) this.setLazily(this.evalAccuracy, evaluation.accuracy);
    if (evaluation.loss !== null) this.setLazily(this.evalLoss, evaluation.loss);
  }

  /** ε spent so far at δ (central DP, RunMonitor); the gauges appear with the first value. */
  observePrivacy(privacy: { epsilon: number; delta: number }): void {
    this.setLazily(this.privacyEpsilon, privacy.epsilon);
    this.setLazily(this.privacyDelta, privacy.delta);
  }

  /** ε per agent's data so far at δ (record-level DP, RunMonitor); the gauges appear with the first value. */
  observeRecordPrivacy(privacy: { epsilon: number; delta: number }): void {
    this.setLazily(this.recordPrivacyEpsilon, privacy.epsilon);
    this.setLazily(this.recordPrivacyDelta, privacy.delta);
  }

  private readonly registered = new Set<Gauge>();

  private setLazily(gauge: Gauge, value: number): void {
    if (!this.registered.has(gauge)) {
      this.registry.registerMetric(gauge);
      this.registered.add(gauge);
    }
    gauge.set(value);
  }

  /** Sets the log version before the first round (e.g. after a restart). */
  setLogVersion(version: number): void {
    this.logVersion.set(version);
  }
}
