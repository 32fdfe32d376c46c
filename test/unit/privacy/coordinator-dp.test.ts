import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig, runCoordinator } from '../../../cli/coordinator-command.js';
import { formatCoordinatorSummary } from '../../../cli/coordinator-summary.js';
import { readRunRecord } from '../../../coordinator/run-record.js';
import type { Agent } from '../../../edge-agent/agent.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { GrpcTransport } from '../../../shared/transport/index.js';
import { fixture, makeAgent, until } from '../../integration/fleet-fixture.js';
import { captureStderr } from '../../helpers/capture-stderr.js';

describe('mezo coordinator with central DP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-coordinator-dp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the DP options from flags, MEZO_COORDINATOR_DP_* and the config, naming the field when they do not fit', () => {
    const config = resolveCoordinatorConfig({ dpClip: 2 }, { MEZO_COORDINATOR_DP_EPSILON: '3', MEZO_COORDINATOR_DP_FLEET_SIZE: '40' });
    expect(config.dp).toEqual({ clip: 2, epsilon: 3, fleetSize: 40, delta: 1e-5 });
    expect(resolveCoordinatorConfig({}, {}).dp).toBeUndefined();
    expect(() => resolveCoordinatorConfig({ dpClip: 1 }, {})).toThrow(/dp\.noiseMultiplier: give noiseMultiplier or epsilon/);
    expect(() => resolveCoordinatorConfig({ dpClip: 1, dpEpsilon: 2 }, {})).toThrow(/dp\.fleetSize: deriving the noise multiplier from epsilon needs the fleet size/);
    expect(() => resolveCoordinatorConfig({ dpClip: 1, dpNoiseMultiplier: 1, dpDelta: 2 }, {})).toThrow(/dp\.delta/);
  });

  it('refuses an aggregation the noise would not cover before opening anything', async () => {
    const config = resolveCoordinatorConfig({ listen: '127.0.0.1:0', log: join(dir, 'refused', 'update.log'), dpClip: 1, dpNoiseMultiplier: 1, strategy: 'median' }, {});
    await expect(runCoordinator(config, [])).rejects.toThrow(/dp: strategy.aggregation must be 'mean'/);
  });

  it('ends the job cleanly at the ε budget and reports ε spent as the accountant gives it', async () => {
    const f = await fixture();
    const sigma = 2;
    const delta = 1e-5;
    // Two agents, two asked per round: every round samples at rate 1. A budget between 3 and 4 rounds' ε.
    const budget = (epsilonFor(1, sigma, 3, delta) + epsilonFor(1, sigma, 4, delta)) / 2;
    const stderr = captureStderr();
    const agents: Agent[] = [];
    const runs: Array<Promise<void>> = [];
    const log = join(dir, 'budget', 'update.log');
    const record = join(dir, 'budget', 'run.json');
    let summary = '';
    try {
      const config = resolveCoordinatorConfig(
        { listen: '127.0.0.1:0', log, rounds: 10, agentsPerRound: 2, batchSize: 16, evalEvery: 0, dpClip: 1, dpNoiseMultiplier: sigma, dpEpsilon: budget, runRecord: record },
        {},
      );
      const running = runCoordinator(config, [], { onFinished: (outcome) => (summary = formatCoordinatorSummary(outcome)) });
      await until(() => /listening on (\S+),/.test(stderr.text), 20_000, 'the coordinator to listen');
      const address = /listening on (\S+),/.exec(stderr.text)![1]!;
      for (const i of [0, 1]) {
        const agent = makeAgent(f, new GrpcTransport({ address }), i);
        agents.push(agent);
        runs.push(agent.run());
      }
      const report = await running;
      expect(report).toMatchObject({ roundsRun: 3, version: 3, stopped: true });
      expect(report.privacy).toMatchObject({ noiseMultiplier: sigma, delta, roundsReleased: 3, budgetSpent: true });
      expect(report.privacy!.epsilon).toBeCloseTo(epsilonFor(1, sigma, 3, delta), 10);
      expect(report.privacy!.epsilon).toBeLessThanOrEqual(budget);
      expect(summary).toMatch(new RegExp(`privacy +central DP: ε = ${report.privacy!.epsilon.toFixed(3)} at δ = 1e-5 after 3 rounds, noise multiplier 2.000, clip 1 \\(budget spent\\)`));
    } finally {
      stderr.restore();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs);
    }
    // The run record holds ε after every round and what the budget spent, for mezo report and the dashboard.
    const written = await readRunRecord(record);
    written.rounds.forEach((row, i) => expect(row.privacyEpsilon).toBeCloseTo(epsilonFor(1, sigma, i + 1, delta), 10));
    expect(written.summary.privacy).toMatchObject({ roundsReleased: 3, budgetSpent: true });
    expect(written.config).toMatchObject({ dp: { clip: 1, noiseMultiplier: sigma, epsilon: budget, delta } });
  });
});
