import { describe, expect, it } from 'vitest';
import { Coordinator, MezoStrategy } from '../../../coordinator/index.js';
import { CentralDpStrategy, stopAtPrivacyBudget } from '../../../coordinator/dp-strategy.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { reportHtml } from '../../../coordinator/report/render-report.js';
import { RunMonitor } from '../../../coordinator/run-monitor.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { base, baseSha256, scriptedAgent, until } from '../dashboard/scripted-fleet.js';

const samples = (text: string, name: string): string[] => text.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));

async function run(withDp: boolean) {
  const transport = new InMemoryTransport();
  const options = { jobId: 'dp-metrics', heartbeatMs: 50, deadlineMs: 2000, rounds: 20, strategy: { agentsPerRound: 2, seedMode: 'shared' as const, schedule: { kind: 'constant' as const, lr: 0.01 } } };
  // Two agents, two asked: rate 1 every round; a budget between 3 and 4 rounds' ε at σ = 2.
  const budget = (epsilonFor(1, 2, 3, 1e-5) + epsilonFor(1, 2, 4, 1e-5)) / 2;
  const dp = withDp ? new CentralDpStrategy(new MezoStrategy(options.strategy), { clip: 1, noiseMultiplier: 2, epsilon: budget }) : undefined;
  const coordinator = new Coordinator({
    log: UpdateLog.inMemory({ jobId: 'dp-metrics', baseSha256, distribution: 'gaussian' }),
    baseSlab: base,
    engine: noise,
    transport,
    options: withDp ? options : { ...options, rounds: 3 },
    ...(dp ? { strategy: dp } : {}),
  });
  const metrics = new CoordinatorMetrics(coordinator);
  const monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0, ...(dp ? { privacy: () => dp.spent() } : {}) });
  const atStart = await metrics.registry.metrics();
  if (dp) stopAtPrivacyBudget(coordinator, dp);
  await coordinator.listen();
  await scriptedAgent(transport, 'a', 1);
  await scriptedAgent(transport, 'b', -1);
  await until(() => coordinator.connectedAgents().length === 2, 30_000, 'both agents');
  await coordinator.run();
  monitor.finish();
  const atEnd = await metrics.registry.metrics();
  const record = monitor.toRunRecord();
  await coordinator.close();
  return { atStart, atEnd, record };
}

describe('privacy metrics, run record and monitor rows', () => {
  it('show ε spent at δ after every round of a job with central DP, from 0 before the first', async () => {
    const { atStart, atEnd, record } = await run(true);
    expect(samples(atStart, 'mezo_privacy_epsilon')).toEqual(['mezo_privacy_epsilon 0']);
    expect(samples(atStart, 'mezo_privacy_delta')).toEqual(['mezo_privacy_delta 0.00001']);
    expect(atEnd).toContain('# TYPE mezo_privacy_epsilon gauge');
    const spent = epsilonFor(1, 2, 3, 1e-5);
    const [line] = samples(atEnd, 'mezo_privacy_epsilon');
    expect(Number(line!.split(' ')[1])).toBeCloseTo(spent, 10);
    expect(record.rounds).toHaveLength(3);
    record.rounds.forEach((row, i) => expect(row.privacyEpsilon).toBeCloseTo(epsilonFor(1, 2, i + 1, 1e-5), 10));
    expect(record.summary.privacy).toMatchObject({ noiseMultiplier: 2, delta: 1e-5, roundsReleased: 3, budgetSpent: true });
    expect(record.summary.privacy!.epsilon).toBeCloseTo(spent, 10);
    // mezo report renders it in the summary table.
    expect(reportHtml(record)).toContain(`<tr><th>central DP</th><td>ε = ${spent.toFixed(3)} at δ = 1e-5 after 3 rounds, noise multiplier 2.000 (budget spent)</td></tr>`);
  });

  it('leave the privacy gauges, row field and summary out of a job without DP', async () => {
    const { atStart, atEnd, record } = await run(false);
    for (const text of [atStart, atEnd]) {
      expect(samples(text, 'mezo_privacy_epsilon')).toEqual([]);
      expect(text).not.toContain('mezo_privacy_delta');
    }
    expect(record.rounds).toHaveLength(3);
    expect(record.rounds.every((row) => !('privacyEpsilon' in row))).toBe(true);
    expect(record.summary.privacy).toBeUndefined();
    expect(reportHtml(record)).not.toContain('central DP');
  });
});
