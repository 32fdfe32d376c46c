/**
 * RunMonitor: watches a Coordinator and keeps what an operator wants to see of a run — one row per committed
 * round (loss, learning rate, agents asked/answered/dropped, bytes, the scalars' histogram, sign agreement,
 * divergent replicas, replay lag), held-out evaluations, and the fleet's current state. It feeds the
 * dashboard's live stream (subscribe), the Prometheus metrics (optional), and the run record (toRunRecord,
 * writeRunRecord) that `mezo report` renders.
 *
 *   const monitor = new RunMonitor({ coordinator, kind: 'simulate', config: { agents: 8 } });
 *   await coordinator.run();
 *   monitor.recordEvaluation(round, { accuracy: 0.91, loss: 0.3 });   // whenever one is measured
 *   monitor.finish();                                                  // before coordinator.close()
 *   await monitor.writeRunRecord('run.json');
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { redactSecrets } from '../shared/redact.js';
import type { Traffic } from '../shared/transport/index.js';
import type { AgentStatus, Coordinator, RoundReport } from './coordinator.js';
import { quantile, replayLags, weightsDisagree, type CoordinatorMetrics } from './metrics.js';
import {
  RUN_RECORD_FORMAT,
  parseRunRecord,
  type AgentRow,
  type Evaluation,
  type Histogram,
  type PrivacySpent,
  type RecordPrivacySpent,
  type RoundRow,
  type RunRecord,
  type ScalarSummary,
} from './run-record.js';

/** The parts of a Coordinator the monitor reads (a Coordinator is one). */
export type MonitoredCoordinator = Pick<Coordinator, 'onRound' | 'agentStatuses' | 'traffic' | 'weightsSha256At' | 'options'> & {
  readonly log: { readonly version: number; readonly headHash: string };
};

export interface RunMonitorInit {
  coordinator: MonitoredCoordinator;
  /** What produced the run (default 'coordinator'). */
  kind?: RunRecord['kind'];
  /** Settings worth reporting, as JSON values (default: a few of the coordinator's options). */
  config?: Record<string, unknown>;
  /** Fed every round and evaluation; then do not also pass it the coordinator's onRound. */
  metrics?: CoordinatorMetrics;
  /** Bins of the per-round scalar histogram (default 24). */
  histogramBins?: number;
  /** Period of 'fleet' events between rounds (default 1000 ms; 0: only at rounds). */
  fleetIntervalMs?: number;
  /** Agents listed in fleet events (the most lagging first; default 100). The run record lists all. */
  fleetAgentLimit?: number;
  /** Central DP: what the privacy budget has spent so far (read after every round; e.g. from a CentralDpStrategy). */
  privacy?: () => PrivacySpent;
  /**
   * Record-level DP: ε per agent's data so far (e.g. a RecordDpAccountant's spent()); the accountant must hear
   * each round before the monitor does (trackRecordPrivacy registered first).
   */
  recordPrivacy?: () => RecordPrivacySpent;
}

export interface FleetState {
  /** Milliseconds since the epoch. */
  at: number;
  version: number;
  headHash: string;
  known: number;
  connected: number;
  /** Replay lag quantiles over connected agents, in versions. */
  lag: { p50: number; p90: number; p99: number; max: number };
  /** Connected replicas whose weights hash disagrees with the coordinator's (all of them, up to the limit). */
  divergent: AgentRow[];
  /** Agents, the most lagging first (up to fleetAgentLimit). */
  agents: AgentRow[];
}

export type MonitorEvent =
  | { type: 'round'; row: RoundRow }
  | { type: 'evaluation'; evaluation: Evaluation }
  | { type: 'fleet'; fleet: FleetState }
  | { type: 'end'; endedAt: string };

/** What a page opened mid-run needs before the live events: the history so far. */
export interface MonitorSnapshot {
  kind: RunRecord['kind'];
  job: string;
  startedAt: string;
  endedAt: string | null;
  config: Record<string, unknown>;
  rounds: RoundRow[];
  evaluations: Evaluation[];
  fleet: FleetState;
}

export class MonitorError extends Error {
  override name = 'MonitorError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Equal-width bins over [min, max]; one bin when all values are equal. Non-finite values are skipped. */
export function histogram(values: readonly number[], bins: number): Histogram | null {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return null;
  let min = Infinity;
  let max = -Infinity;
  for (const v of finite) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const n = min === max ? 1 : bins;
  const counts = new Array<number>(n).fill(0);
  const width = (max - min) / n;
  for (const v of finite) counts[n === 1 ? 0 : Math.min(n - 1, Math.floor((v - min) / width))]!++;
  return { min, max, counts };
}

export function summariseScalars(values: readonly number[], bins: number): ScalarSummary {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { count: values.length, mean: null, min: null, max: null, positiveFraction: null, histogram: null };
  const h = histogram(finite, bins)!;
  return {
    count: values.length,
    mean: finite.reduce((a, b) => a + b, 0) / finite.length,
    min: h.min,
    max: h.max,
    positiveFraction: finite.filter((v) => v > 0).length / finite.length,
    histogram: h,
  };
}

/**
 * Over seeds evaluated by 2+ agents, the fraction of their scalars whose sign matches the seed's aggregate.
 * The aggregate's sign is read from the committed coefficient (coeff = −lr·aggregate/n, so the opposite sign);
 * with a zero coefficient (lr 0) it falls back to the mean of the seed's scalars.
 */
export function signAgreement(report: Pick<RoundReport, 'scalars' | 'terms'>): number | null {
  const perSeed = new Map<bigint, number[]>();
  for (const { seeds, g } of report.scalars) {
    seeds.forEach((seed, k) => {
      const values = perSeed.get(seed);
      if (values) values.push(g[k]!);
      else perSeed.set(seed, [g[k]!]);
    });
  }
  const coeffs = new Map(report.terms.map((t) => [t.seed, t.coeff]));
  let agree = 0;
  let total = 0;
  for (const [seed, values] of perSeed) {
    if (values.length < 2) continue;
    const coeff = coeffs.get(seed) ?? 0;
    const sign = coeff !== 0 ? -Math.sign(coeff) : Math.sign(values.reduce((a, b) => a + b, 0));
    total += values.length;
    agree += values.filter((v) => Math.sign(v) === sign).length;
  }
  return total === 0 ? null : agree / total;
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The coordinator's settings as a run record shows them (callers may add their own keys). */
export function coordinatorRunConfig(options: Coordinator['options']): Record<string, unknown> {
  return {
    rounds: options.rounds,
    agentsPerRound: options.strategy.agentsPerRound,
    quorum: options.quorum ?? null,
    seedMode: options.strategy.seedMode,
    seedsPerAgent: options.strategy.seedsPerAgent,
    aggregation: options.strategy.aggregation,
    lr: options.strategy.schedule.lr,
    epsilon: options.epsilon,
    batchSize: options.batchSize,
    distribution: options.distribution,
    // A low-rank job's rank and V period (absent for other distributions, as in records before them).
    ...(options.rank !== undefined ? { rank: options.rank, vPeriod: options.strategy.vPeriod } : {}),
    // What the agents apply under record-level DP (the dashboard's record-level privacy card reads it).
    ...(options.recordDp ? { recordDp: { ...options.recordDp } } : {}),
  };
}

export class RunMonitor {
  readonly kind: RunRecord['kind'];
  readonly job: string;
  readonly startedAt = new Date();
  private endedAt: Date | undefined;
  private readonly coordinator: MonitoredCoordinator;
  private readonly config: Record<string, unknown>;
  private readonly metrics: CoordinatorMetrics | undefined;
  private readonly bins: number;
  private readonly privacy: (() => PrivacySpent) | undefined;
  private readonly recordPrivacy: (() => RecordPrivacySpent) | undefined;
  private readonly agentLimit: number;
  private readonly rows: RoundRow[] = [];
  private readonly evaluations: Evaluation[] = [];
  private readonly listeners = new Set<(event: MonitorEvent) => void>();
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout | undefined;
  private scalars: number[] = [];
  /** Traffic as last seen: the listener's map is gone once the coordinator closes. */
  private lastTraffic: ReadonlyMap<string, Traffic> = new Map();
  private statuses: AgentStatus[] = [];
  private totals = { up: 0, down: 0, late: 0, rejected: 0 };

  constructor(init: RunMonitorInit) {
    this.coordinator = init.coordinator;
    this.kind = init.kind ?? 'coordinator';
    const options = init.coordinator.options;
    this.job = options.jobId;
    // Redacted here, once: the config goes into run records, the dashboard and reports.
    this.config = redactSecrets(init.config ?? coordinatorRunConfig(options));
    this.metrics = init.metrics;
    this.bins = init.histogramBins ?? 24;
    this.agentLimit = init.fleetAgentLimit ?? 100;
    if (!Number.isSafeInteger(this.bins) || this.bins < 1) throw new MonitorError(`RunMonitor: histogramBins must be a positive integer, got ${this.bins}`);
    this.privacy = init.privacy;
    this.recordPrivacy = init.recordPrivacy;
    if (this.recordPrivacy) this.metrics?.observeRecordPrivacy(this.recordPrivacy());
    // A DP job's gauges show ε = 0 from the start, not only after a first round.
    if (this.privacy) this.metrics?.observePrivacy(this.privacy());
    this.refresh();
    // Bytes and late/rejected counts before the first round (e.g. a restart) are not the first round's.
    this.totals = this.currentTotals();
    this.unsubscribe = init.coordinator.onRound((report) => this.observeRound(report));
    const interval = init.fleetIntervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => this.emit({ type: 'fleet', fleet: this.fleet() }), interval);
      this.timer.unref();
    }
  }

  /** Receives every event from now on; returns its unsubscribe. A listener's error is not the monitor's. */
  subscribe(listener: (event: MonitorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The rows so far (round order). */
  roundRows(): readonly RoundRow[] {
    return this.rows;
  }

  /** The latest committed round's scalars (every g, agent by agent). */
  latestScalars(): readonly number[] {
    return this.scalars;
  }

  /**
   * Records a held-out evaluation of the model after `round` (-1: the base weights, before the first round).
   * Accuracy is a fraction in [0, 1].
   */
  recordEvaluation(round: number, result: { accuracy?: number | null; loss?: number | null }): Evaluation {
    if (!Number.isSafeInteger(round) || round < -1) throw new MonitorError(`recordEvaluation: round must be an integer ≥ -1, got ${round}`);
    const accuracy = result.accuracy ?? null;
    const loss = result.loss ?? null;
    if (accuracy !== null && !(accuracy >= 0 && accuracy <= 1)) throw new MonitorError(`recordEvaluation: accuracy must be in [0, 1], got ${accuracy}`);
    if (loss !== null && !Number.isFinite(loss)) throw new MonitorError(`recordEvaluation: loss must be finite, got ${loss}`);
    const evaluation: Evaluation = { round, accuracy, loss };
    const at = this.evaluations.findIndex((e) => e.round >= round);
    if (at === -1) this.evaluations.push(evaluation);
    else if (this.evaluations[at]!.round === round) this.evaluations[at] = evaluation;
    else this.evaluations.splice(at, 0, evaluation);
    this.metrics?.observeEvaluation(evaluation);
    this.emit({ type: 'evaluation', evaluation });
    return evaluation;
  }

  /** The fleet as it stands (agents and traffic are read from the coordinator now, while it is listening). */
  fleet(): FleetState {
    this.refresh();
    const version = this.coordinator.log.version;
    const rows = this.agentRows();
    const lags = replayLags(this.statuses, version);
    const lagOf = (a: AgentRow): number => (a.connected ? a.replayLag : -1);
    const byLag = [...rows].sort((a, b) => lagOf(b) - lagOf(a) || (a.id < b.id ? -1 : 1));
    return {
      at: Date.now(),
      version,
      headHash: this.coordinator.log.headHash,
      known: rows.length,
      connected: rows.filter((a) => a.connected).length,
      lag: { p50: quantile(lags, 0.5), p90: quantile(lags, 0.9), p99: quantile(lags, 0.99), max: quantile(lags, 1) },
      divergent: rows.filter((a) => a.connected && a.weightsMatch === false).slice(0, this.agentLimit),
      agents: byLag.slice(0, this.agentLimit),
    };
  }

  snapshot(): MonitorSnapshot {
    return {
      kind: this.kind,
      job: this.job,
      startedAt: this.startedAt.toISOString(),
      endedAt: this.endedAt?.toISOString() ?? null,
      config: this.config,
      rounds: [...this.rows],
      evaluations: [...this.evaluations],
      fleet: this.fleet(),
    };
  }

  /**
   * Ends the run: takes the last traffic and agent statistics (call it before coordinator.close(), which drops
   * the listener's traffic), stops listening to rounds and tells subscribers. Idempotent.
   */
  finish(): void {
    if (this.endedAt) return;
    this.refresh();
    this.endedAt = new Date();
    this.unsubscribe();
    if (this.timer) clearInterval(this.timer);
    this.emit({ type: 'end', endedAt: this.endedAt.toISOString() });
  }

  get finished(): boolean {
    return this.endedAt !== undefined;
  }

  toRunRecord(): RunRecord {
    if (!this.endedAt) this.refresh();
    const agents = this.agentRows();
    const moved = agents.filter((a) => a.bytesUp + a.bytesDown > 0);
    const sum = (f: (a: AgentRow) => number, list = agents): number => list.reduce((n, a) => n + f(a), 0);
    const rejected: Record<string, number> = {};
    for (const status of this.statuses) {
      for (const [reason, n] of Object.entries(status.stats.rejections)) rejected[reason] = (rejected[reason] ?? 0) + (n ?? 0);
    }
    const firstRound = this.rows[0]?.round ?? 0;
    const before = this.evaluations.find((e) => e.round < firstRound && e.accuracy !== null);
    const after = [...this.evaluations].reverse().find((e) => e.accuracy !== null && e.round >= firstRound);
    const losses = this.rows.map((r) => r.trainLoss).filter((l): l is number => l !== null);
    const ended = this.endedAt ?? new Date();
    const bytesUp = sum((a) => a.bytesUp);
    const bytesDown = sum((a) => a.bytesDown);
    const record: RunRecord = {
      format: RUN_RECORD_FORMAT,
      kind: this.kind,
      job: this.job,
      startedAt: this.startedAt.toISOString(),
      endedAt: this.endedAt?.toISOString() ?? null,
      config: JSON.parse(JSON.stringify(this.config)) as RunRecord['config'],
      rounds: [...this.rows],
      evaluations: [...this.evaluations],
      agents,
      summary: {
        rounds: this.rows.length,
        version: this.coordinator.log.version,
        headHash: this.coordinator.log.headHash,
        wallSeconds: Math.max(0, (ended.getTime() - this.startedAt.getTime()) / 1000),
        accuracyBefore: before?.accuracy ?? null,
        accuracyAfter: after?.accuracy ?? null,
        lossFirst: losses[0] ?? null,
        lossLast: losses.at(-1) ?? null,
        failedAttempts: this.rows.reduce((n, r) => n + r.attempt, 0),
        agents: agents.length,
        bytesUp,
        bytesDown,
        bytesUpPerAgent: moved.length === 0 ? 0 : bytesUp / moved.length,
        bytesDownPerAgent: moved.length === 0 ? 0 : bytesDown / moved.length,
        late: sum((a) => a.late),
        dropped: sum((a) => a.dropped),
        rejected,
        ...(this.privacy ? { privacy: this.privacy() } : {}),
        ...(this.recordPrivacy ? { recordPrivacy: this.recordPrivacy() } : {}),
      },
    };
    // The record must pass the schema `mezo report` checks; a failure here is a monitor bug, caught early.
    return parseRunRecord(record, 'RunMonitor.toRunRecord');
  }

  /** Writes the run record as JSON (temporary file, then rename, so a reader never sees half of it). */
  async writeRunRecord(path: string): Promise<RunRecord> {
    const record = this.toRunRecord();
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`);
    await rename(temporary, path);
    return record;
  }

  // ---- internals ----

  private emit(event: MonitorEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken subscriber (e.g. a closed HTTP response) must not stop the others or the round loop.
      }
    }
  }

  /** Reads agent statistics and traffic, keeping the last traffic seen when the listener is gone. */
  private refresh(): void {
    if (this.endedAt) return;
    this.statuses = this.coordinator.agentStatuses();
    const traffic = this.coordinator.traffic();
    if (traffic.size > 0 || this.lastTraffic.size === 0) this.lastTraffic = new Map(traffic);
  }

  private currentTotals(): { up: number; down: number; late: number; rejected: number } {
    let up = 0;
    let down = 0;
    for (const t of this.lastTraffic.values()) {
      up += t.bytesUp;
      down += t.bytesDown;
    }
    let late = 0;
    let rejected = 0;
    for (const s of this.statuses) {
      late += s.stats.late;
      rejected += s.stats.rejected;
    }
    return { up, down, late, rejected };
  }

  private agentRows(): AgentRow[] {
    const head = this.coordinator.log.version;
    return this.statuses.map((s) => {
      const traffic = this.lastTraffic.get(s.id);
      const checkable = s.weightsSha256 !== undefined && this.coordinator.weightsSha256At(s.weightsVersion ?? s.version) !== undefined;
      return {
        id: s.id,
        connected: s.connected,
        version: s.version,
        replayLag: Math.max(0, head - s.version),
        weightsMatch: checkable ? !weightsDisagree(this.coordinator, s) : null,
        tasks: s.stats.tasks,
        accepted: s.stats.accepted,
        late: s.stats.late,
        dropped: s.stats.dropped,
        rejected: s.stats.rejected,
        divergentHeartbeats: s.stats.divergent,
        bytesUp: traffic?.bytesUp ?? 0,
        bytesDown: traffic?.bytesDown ?? 0,
      };
    });
  }

  private observeRound(report: RoundReport): void {
    this.refresh();
    const totals = this.currentTotals();
    const previous = this.totals;
    this.totals = totals;
    this.scalars = report.scalars.flatMap((s) => [...s.g]);
    const head = this.coordinator.log.version;
    const connected = this.statuses.filter((a) => a.connected);
    const agreement = signAgreement(report);
    const row: RoundRow = {
      round: report.round,
      attempt: report.attempt,
      version: report.version,
      hash: report.hash,
      at: Math.max(0, (Date.now() - this.startedAt.getTime()) / 1000),
      durationSeconds: Math.max(0, report.wallMs / 1000),
      trainLoss: finiteOrNull(report.trainLoss),
      lr: report.lr,
      connected: report.connected,
      asked: report.asked,
      answered: report.results,
      dropped: report.dropped,
      late: Math.max(0, totals.late - previous.late),
      rejected: Math.max(0, totals.rejected - previous.rejected),
      bytesUp: Math.max(0, totals.up - previous.up),
      bytesDown: Math.max(0, totals.down - previous.down),
      scalars: summariseScalars(this.scalars, this.bins),
      signAgreement: agreement,
      divergent: connected.filter((a) => weightsDisagree(this.coordinator, a)).length,
      maxReplayLag: connected.reduce((m, a) => Math.max(m, head - a.version), 0),
    };
    // The strategy accounted the round when it aggregated it, before the commit that reports it.
    const privacy = this.privacy?.();
    if (privacy) row.privacyEpsilon = privacy.epsilon;
    const recordPrivacy = this.recordPrivacy?.();
    if (recordPrivacy) row.recordPrivacyEpsilon = recordPrivacy.epsilon;
    this.rows.push(row);
    if (this.metrics) {
      this.metrics.observeRound(report);
      this.metrics.observeSignAgreement(agreement);
      if (privacy) this.metrics.observePrivacy(privacy);
      if (recordPrivacy) this.metrics.observeRecordPrivacy(recordPrivacy);
    }
    this.emit({ type: 'round', row });
    this.emit({ type: 'fleet', fleet: this.fleet() });
  }
}
