import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { serveDashboard } from '../../../coordinator/dashboard/server.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { joinScriptedAgent } from '../../helpers/scripted-agent.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);

/** An agent that answers every task with consistent scalars, except a NaN scalar on its first task. */
async function agent(transport: InMemoryTransport, agentId: string, poisonFirst: boolean): Promise<void> {
  let first = poisonFirst;
  await joinScriptedAgent(transport, { agentId, baseSha256 }, ({ round, attempt, seeds, epsilon }, session) => {
    const g = seeds.map(() => 1 / (2 * epsilon));
    session.send({ kind: 'result', result: { round, attempt, seeds, g: first ? g.map(() => Number.NaN) : g, lossPlus: seeds.map(() => 2), lossMinus: seeds.map(() => 1), sampleCount: 1 } });
    first = false;
  });
}

/** Parses the Prometheus text format into name{labels} → value. */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

describe('coordinator metrics', () => {
  let coordinator: Coordinator;
  let server: Awaited<ReturnType<typeof serveDashboard>>;
  const token = 'operator-secret';

  beforeAll(async () => {
    const transport = new InMemoryTransport();
    const log = UpdateLog.inMemory({ jobId: 'metrics', baseSha256, distribution: 'gaussian' });
    let metrics!: CoordinatorMetrics;
    coordinator = new Coordinator({
      log,
      baseSlab: base,
      engine: noise,
      transport,
      options: { jobId: 'metrics', heartbeatMs: 50, rounds: 3, deadlineMs: 300, strategy: { agentsPerRound: 2 }, quorum: 1 },
      onRound: (report) => metrics.observeRound(report),
    });
    metrics = new CoordinatorMetrics(coordinator);
    await coordinator.listen();
    await agent(transport, 'a1', false);
    await agent(transport, 'a2', true);
    // Without a run monitor: the operator server with metrics and health only.
    server = await serveDashboard({ metrics, port: 0, token, ready: () => coordinator.address !== undefined });
    await coordinator.run();
  });
  afterAll(async () => {
    await server.close();
    await coordinator.close();
  });

  it('serves rounds, versions, agents and rejections under Prometheus names', async () => {
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const text = await response.text();
    const values = parse(text);
    expect(values.get('mezo_rounds_total')).toBe(3);
    expect(values.get('mezo_log_version')).toBe(3);
    expect(values.get('mezo_agents_connected')).toBe(2);
    expect(values.get('mezo_round_duration_seconds_count')).toBe(3);
    expect(values.get('mezo_results_rejected_total{reason="invalid-message"}')).toBe(1);
    // Per-agent counters report the coordinator's own statistics as they stand.
    const statuses = coordinator.agentStatuses();
    expect(values.get('mezo_tasks_sent_total')).toBe(statuses.reduce((n, a) => n + a.stats.tasks, 0));
    expect(values.get('mezo_results_accepted_total')).toBe(statuses.reduce((n, a) => n + a.stats.accepted, 0));
    expect(values.get('mezo_results_accepted_total')).toBeGreaterThanOrEqual(3);
    // Conventions: every counter ends in _total, durations are in seconds, nothing is in milliseconds.
    for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE mezo_'))) {
      const [, , name, type] = line.split(' ');
      if (type === 'counter') expect(name).toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|milliseconds|kb|mb)(_|$)/);
    }
    expect(text).toContain('# TYPE mezo_round_duration_seconds histogram');
  });

  it('answers health and readiness, and refuses requests without the operator token', async () => {
    const auth = { headers: { authorization: `Bearer ${token}` } };
    expect((await fetch(`${server.url}/healthz`, auth)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`, auth)).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${server.url}/nothing`, auth)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { ...auth, method: 'POST' })).status).toBe(405);
  });
});
