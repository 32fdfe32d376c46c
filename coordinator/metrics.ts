/**
 * Prometheus metrics of a coordinator (prom-client), served over HTTP with /healthz and /readyz. Round
 * metrics are observed as rounds commit; per-agent counters are read from the coordinator's agent statistics
 * when Prometheus scrapes, so the round loop pays nothing for them. Names follow Prometheus conventions: base
 * units (seconds, bytes) and `_total` on counters.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStatus, RejectionReason, RoundReport } from './coordinator.js';

/** What the metrics read from a coordinator. */
export interface MetricsSource {
  agentStatuses(): AgentStatus[];
}

type Totals = Record<'tasks' | 'accepted' | 'late' | 'dropped' | 'divergent' | 'rateLimited', number>;

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly rounds: Counter;
  private readonly roundDuration: Histogram;
  private readonly roundResults: Gauge;
  private readonly roundAsked: Gauge;
  private readonly trainLoss: Gauge;
  private readonly learningRate: Gauge;
  private readonly logVersion: Gauge;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mezo_process_' });
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
      name: 'mezo_agents_known',
      help: 'Agents that have joined since the coordinator started',
      registers,
      collect() {
        this.set(statuses().length);
      },
    });
    const total = (name: string, help: string, field: keyof Totals): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The coordinator keeps the running totals; a scrape reports them as they stand.
          this.reset();
          this.inc(statuses().reduce((sum, a) => sum + a.stats[field], 0));
        },
      });
    };
    total('mezo_tasks_sent_total', 'Tasks sent to agents', 'tasks');
    total('mezo_results_accepted_total', 'Results merged into a round', 'accepted');
    total('mezo_results_late_total', 'Results that arrived after their round closed (dropped)', 'late');
    total('mezo_tasks_dropped_total', 'Tasks whose agent disconnected before answering', 'dropped');
    total('mezo_heartbeats_divergent_total', 'Heartbeats whose weights hash differed from the coordinator\'s', 'divergent');
    total('mezo_rate_limited_total', 'Calls refused because an agent exceeded its message budget', 'rateLimited');
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
    if (Number.isFinite(report.trainLoss)) this.trainLoss.set(report.trainLoss);
    this.learningRate.set(report.lr);
    this.logVersion.set(report.version);
  }

  /** Sets the log version before the first round (e.g. after a restart). */
  setLogVersion(version: number): void {
    this.logVersion.set(version);
  }
}

export interface MetricsServerOptions {
  metrics: CoordinatorMetrics;
  host?: string;
  port: number;
  /** When set, every request needs `Authorization: Bearer <token>` (read-only access for operators). */
  token?: string;
  /** /readyz answers 200 once this returns true (e.g. the coordinator is listening). */
  ready?: () => boolean;
}

function authorised(request: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const header = request.headers.authorization ?? '';
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Serves /metrics, /healthz and /readyz; resolves with the bound address once listening. */
export async function serveMetrics(options: MetricsServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (!authorised(request, options.token)) {
      response.writeHead(401, { 'www-authenticate': 'Bearer' }).end('unauthorised\n');
      return;
    }
    if (path === '/metrics') {
      options.metrics.registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(body),
        (err: Error) => response.writeHead(500).end(`${err.message}\n`),
      );
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = options.ready?.() ?? true;
      response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
