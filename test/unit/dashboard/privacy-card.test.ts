import { describe, expect, it } from 'vitest';
import { Coordinator, MezoStrategy } from '../../../coordinator/index.js';
import { CentralDpStrategy, stopAtPrivacyBudget } from '../../../coordinator/dp-strategy.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import type { MonitorSnapshot } from '../../../coordinator/run-monitor.js';
import { RunMonitor } from '../../../coordinator/run-monitor.js';
import type { RunRecord } from '../../../coordinator/run-record.js';
import { serveDashboard } from '../../../coordinator/dashboard/server.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { base, baseSha256, readEvents, scriptedAgent, until } from './scripted-fleet.js';

describe('the dashboard of a job with central DP', () => {
  it('carries the DP settings and ε after every round to the page, whose privacy card is hidden until a run has DP', async () => {
    const transport = new InMemoryTransport();
    const strategy = { agentsPerRound: 2, seedMode: 'shared' as const, schedule: { kind: 'constant' as const, lr: 0.01 } };
    // Rate 1 every round (two agents, two asked); the budget holds 3 rounds at σ = 2.
    const budget = (epsilonFor(1, 2, 3, 1e-5) + epsilonFor(1, 2, 4, 1e-5)) / 2;
    const dp = new CentralDpStrategy(new MezoStrategy(strategy), { clip: 1, noiseMultiplier: 2, epsilon: budget });
    const coordinator = new Coordinator({
      log: UpdateLog.inMemory({ jobId: 'dp-dash', baseSha256, distribution: 'gaussian' }),
      baseSlab: base,
      engine: noise,
      transport,
      strategy: dp,
      options: { jobId: 'dp-dash', heartbeatMs: 50, deadlineMs: 2000, rounds: 20, strategy },
    });
    const metrics = new CoordinatorMetrics(coordinator);
    const dpConfig = { clip: 1, noiseMultiplier: 2, epsilon: budget, delta: 1e-5 };
    const monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0, config: { dp: dpConfig }, privacy: () => dp.spent() });
    const server = await serveDashboard({ metrics, monitor, port: 0, ready: () => coordinator.address !== undefined });
    try {
      stopAtPrivacyBudget(coordinator, dp);
      await coordinator.listen();
      await scriptedAgent(transport, 'a', 1);
      await scriptedAgent(transport, 'b', -1);
      await until(() => coordinator.connectedAgents().length === 2, 30_000, 'both agents');
      await coordinator.run();
      const html = await (await fetch(`${server.url}/`)).text();
      expect(html).toMatch(/<div class="kpi wide" id="kpi-privacy-card" hidden>/);
      const script = await (await fetch(`${server.url}/assets/dashboard.js`)).text();
      expect(script).toContain("$('kpi-privacy-card').hidden = false");
      const [snapshot] = await readEvents(await fetch(`${server.url}/events`), (events) => events.length >= 1);
      expect(snapshot!.event).toBe('snapshot');
      const data = snapshot!.data as MonitorSnapshot;
      expect(data.config).toEqual({ dp: dpConfig });
      expect(data.rounds.map((r) => r.privacyEpsilon)).toHaveLength(3);
      data.rounds.forEach((r, i) => expect(r.privacyEpsilon).toBeCloseTo(epsilonFor(1, 2, i + 1, 1e-5), 10));
      const record = (await (await fetch(`${server.url}/api/run`)).json()) as RunRecord;
      expect(record.summary.privacy).toMatchObject({ roundsReleased: 3, budgetSpent: true, delta: 1e-5 });
    } finally {
      monitor.finish();
      await server.close();
      await coordinator.close();
    }
  });
});
