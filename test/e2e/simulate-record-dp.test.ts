/**
 * `mezo simulate` with record-level DP in private mode: the real coordinator and virtual agents on the default
 * task, each agent clipping per example and noising its g, no losses sent, and the run ending at the ε budget
 * per agent's data, with ε as the accountant gives it and the replicas matching the log.
 */
import { describe, expect, it } from 'vitest';
import { formatSimulationReport } from '../../cli/simulate-command.js';
import { epsilonFor } from '../../shared/privacy/rdp-accountant.js';
import { runSimulation } from '../../simulation/simulate.js';
import { FleetData } from '../../simulation/fleet-data.js';
import { parseRunRecord } from '../../coordinator/run-record.js';
import { reportHtml } from '../../coordinator/report/render-report.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('mezo simulate with record-level DP in private mode', () => {
  it('ends the run at the budget per agent\'s data, with no losses reaching the coordinator', async () => {
    const sigma = 0.8;
    const delta = 1e-5;
    const batchSize = 16;
    // The fleet's smallest shard, as the simulation partitions it (same options, same seed).
    const n = new FleetData({ agents: 20, partitioner: 'iid', alpha: 0.5, shardsPerAgent: 2, minPerAgent: 16, seed: 0, cacheShares: 16 }).summary.examplesPerAgent.min;
    const q = (5 / 20) * Math.min(1, batchSize / n);
    // Room for 5 rounds at q.
    const budget = (epsilonFor(q, sigma, 5, delta) + epsilonFor(q, sigma, 6, delta)) / 2;
    const out = mkdtempSync(join(tmpdir(), 'mezo-record-dp-'));
    let metricsText = '';
    let page = '';
    let script = '';
    const run = await runSimulation({
      agents: 20,
      agentsPerRound: 5,
      seedMode: 'shared',
      seedsPerAgent: 2,
      rounds: 30,
      batchSize,
      deadlineMs: 30_000,
      partitioner: 'iid',
      seed: 0,
      recordDp: { clip: 64, noiseMultiplier: sigma, epsilon: budget, delta, private: true },
      out,
      dashboardListen: '127.0.0.1:0',
    }, {
      onFinished: async ({ dashboardUrl }) => {
        metricsText = await (await fetch(`${dashboardUrl}/metrics`)).text();
        page = await (await fetch(`${dashboardUrl}/`)).text();
        script = await (await fetch(`${dashboardUrl}/assets/dashboard.js`)).text();
      },
    });
    expect(run.failure).toBeUndefined();
    const privacy = run.recordPrivacy!;
    expect(privacy).toMatchObject({ clip: 64, noiseMultiplier: sigma, private: true, delta, shardSize: n, budgetSpent: true });
    // Every agent stays connected and no attempt fails: one accounted release per logged round, all at rate q.
    expect(run.failedAttempts).toBe(0);
    expect(run.logVersion).toBe(5);
    expect(privacy.rounds).toBe(5);
    expect(privacy.epsilon).toBeCloseTo(epsilonFor(q, sigma, 5, delta), 12);
    expect(privacy.epsilon).toBeLessThanOrEqual(budget);
    // Private mode: every answer accepted without losses (a result with them would be rejected).
    expect(run.results.rejected).toBe(0);
    expect(run.results.accepted).toBe(5 * 5);
    expect(run.audit.replicasMatching).toBe(run.audit.replicas);
    // Reported like central DP's ε: the run record's rows and summary, and /metrics.
    const record = parseRunRecord(JSON.parse(readFileSync(run.runRecord!, 'utf8')), 'run.json');
    expect(record.summary.recordPrivacy).toEqual(privacy);
    const perRound = record.rounds.map((r) => r.recordPrivacyEpsilon!);
    perRound.forEach((eps, r) => expect(eps).toBeCloseTo(epsilonFor(q, sigma, r + 1, delta), 12));
    expect(record.summary.lossLast).toBeNull();
    expect(reportHtml(record)).toContain(`record-level DP</th><td>ε = ${privacy.epsilon.toFixed(3)} at δ = 1e-5 per agent&#39;s data`);
    expect(metricsText).toMatch(new RegExp(`^mezo_record_privacy_epsilon ${privacy.epsilon.toString().slice(0, 8)}`, 'm'));
    expect(metricsText).toMatch(/^mezo_record_privacy_delta 0.00001$/m);
    expect(metricsText).not.toMatch(/^mezo_privacy_epsilon/m);
    // The dashboard's record-level card: hidden in the page, shown by the script for a config with recordDp.
    expect(record.config.recordDp).toMatchObject({ clip: 64, noiseMultiplier: sigma, private: true });
    expect(page).toMatch(/<div class="kpi wide" id="kpi-record-privacy-card" hidden>/);
    expect(script).toContain("$('kpi-record-privacy-card').hidden = false");
    // The script still parses.
    expect(() => new Function(script)).not.toThrow();
    rmSync(out, { recursive: true, force: true });
    const printed = formatSimulationReport(run, { log: 'update.log', report: 'report.json' });
    expect(printed).toMatch(new RegExp(`record privacy +record DP \\(private mode\\): ε = ${privacy.epsilon.toFixed(3)} at δ = 1e-5 per agent's data \\(${n} examples\\) after 5 rounds.*\\(budget spent\\)`));
  });
  it('combines with central DP: both are applied and accounted on their own', async () => {
    const run = await runSimulation({
      agents: 12,
      agentsPerRound: 4,
      seedMode: 'shared',
      seedsPerAgent: 1,
      rounds: 4,
      batchSize: 16,
      deadlineMs: 30_000,
      partitioner: 'iid',
      dp: { clip: 1, noiseMultiplier: 1.5 },
      recordDp: { clip: 64, noiseMultiplier: 1, private: true },
    });
    expect(run.failure).toBeUndefined();
    expect(run.logVersion).toBe(4);
    expect(run.results.rejected).toBe(0);
    expect(run.privacy).toMatchObject({ noiseMultiplier: 1.5, roundsReleased: 4 });
    expect(run.privacy!.epsilon).toBeCloseTo(epsilonFor(4 / 12, 1.5, 4, 1e-5), 12);
    const n = run.data.examplesPerAgent.min;
    expect(run.recordPrivacy).toMatchObject({ noiseMultiplier: 1, rounds: 4, shardSize: n, private: true });
    expect(run.recordPrivacy!.epsilon).toBeCloseTo(epsilonFor((4 / 12) * Math.min(1, 16 / n), 1, 4, 1e-5), 12);
    expect(run.audit.replicasMatching).toBe(run.audit.replicas);
  });
});
