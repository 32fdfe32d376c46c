/**
 * `mezo simulate` with central agent-level DP: the real coordinator and virtual agents on the default task, the
 * DP strategy wrapper releasing noised coefficients, the run ending at its (ε, δ) budget.
 */
import { describe, expect, it } from 'vitest';
import { formatSimulationReport, resolveSimulateConfig } from '../../cli/simulate-command.js';
import { epsilonFor } from '../../shared/privacy/rdp-accountant.js';
import { runSimulation } from '../../simulation/simulate.js';

describe('mezo simulate with central DP', () => {
  it('ends the run at the budget, with ε as the accountant gives it and the log replaying exactly', async () => {
    const sigma = 1;
    const delta = 1e-5;
    const q = 5 / 20;
    // Room for 6 rounds at q = 5/20 (fewer if a round saw fewer agents connected: a higher rate).
    const budget = (epsilonFor(q, sigma, 6, delta) + epsilonFor(q, sigma, 7, delta)) / 2;
    const report = await runSimulation({
      agents: 20,
      agentsPerRound: 5,
      seedMode: 'shared',
      seedsPerAgent: 1,
      rounds: 30,
      batchSize: 16,
      deadlineMs: 5000,
      dp: { clip: 1, noiseMultiplier: sigma, epsilon: budget, delta },
    });
    expect(report.failure).toBeUndefined();
    expect(report.privacy).toBeDefined();
    const privacy = report.privacy!;
    expect(privacy).toMatchObject({ noiseMultiplier: sigma, delta, budgetSpent: true });
    expect(privacy.roundsReleased).toBe(report.logVersion);
    expect(report.logVersion).toBeGreaterThan(0);
    expect(report.logVersion).toBeLessThanOrEqual(6);
    expect(privacy.epsilon).toBeLessThanOrEqual(budget);
    // No round sampled at a rate below 5/20, so ε is at least the accountant's at that rate.
    expect(privacy.epsilon).toBeGreaterThanOrEqual(epsilonFor(q, sigma, report.logVersion, delta) * (1 - 1e-12));
    // The agents applied exactly the released coefficients: their replicas equal the coordinator's replay.
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);
    const printed = formatSimulationReport(report, { log: 'update.log', report: 'report.json' });
    expect(printed).toMatch(new RegExp(`privacy +central DP: ε = ${privacy.epsilon.toFixed(3)} at δ = 1e-5 after ${report.logVersion} rounds.*\\(budget spent\\)`));
  });

  it('refuses an aggregation the noise does not cover, naming it', async () => {
    await expect(runSimulation({ agents: 4, agentsPerRound: 2, rounds: 1, aggregation: 'median', dp: { clip: 1, noiseMultiplier: 1 } })).rejects.toThrow(/aggregation/);
  });

  it('takes --dp-* flags, and needs a clip with them', () => {
    const config = resolveSimulateConfig({ dpClip: 2, dpEpsilon: 3, seedMode: 'shared' }, {});
    expect(config.dp).toEqual({ clip: 2, epsilon: 3, delta: 1e-5 });
    expect(() => resolveSimulateConfig({ dpEpsilon: 3 }, {})).toThrow(/dp.clip/);
    expect(() => resolveSimulateConfig({ dpClip: 1 }, {})).toThrow(/noiseMultiplier/);
  });
});
