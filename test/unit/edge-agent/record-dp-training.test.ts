/**
 * Record-level DP in local training (`mezo train --dp-record-*`): ε over the steps as the accountant gives it at
 * q = B/n, a budget that ends the run before it is exceeded, and the options' flags on the commands.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { trainLocal } from '../../../edge-agent/local-trainer.js';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { LocalDataset, loadMnist } from '../../../shared/data/index.js';
import { prepareModel, type PreparedModel } from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { noise } from '../../../shared/noise/index.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { resolveTrainConfig } from '../../../cli/train-command.js';
import { resolveSimulateConfig } from '../../../cli/simulate-command.js';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';
import { resolveAgentConfig } from '../../../cli/agent-command.js';

let prepared: PreparedModel;
let train: LocalDataset<Float32Array>;

beforeAll(() => {
  prepared = prepareModel(buildMlp({ sizes: [784, 16, 10], seed: 3 }).bytes, { loss: 'cross-entropy' });
  train = loadMnist().subset(Array.from({ length: 128 }, (_, i) => i), 'train');
});

async function trainWith(recordDp: { clip: number; noiseMultiplier?: number; epsilon?: number }, steps: number) {
  const backend = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1 });
  try {
    return await trainLocal({ backend, train, options: { steps, batchSize: 32, perturbations: 2, schedule: { kind: 'constant', lr: 1e-3 }, seed: 1, recordDp } });
  } finally {
    await backend.close();
  }
}

describe(`record-level DP in local training (${noise.kind})`, () => {
  it('accounts every step at q = batch / examples and reports ε', async () => {
    const report = await trainWith({ clip: 8, noiseMultiplier: 2 }, 6);
    expect(report.steps).toBe(6);
    expect(report.recordPrivacy).toMatchObject({ clip: 8, noiseMultiplier: 2, rounds: 6, shardSize: 128, delta: 1e-5, budgetSpent: false });
    expect(report.recordPrivacy!.epsilon).toBeCloseTo(epsilonFor(32 / 128, 2, 6, 1e-5), 12);
  });

  it('ends the run before a step would take ε past the budget', async () => {
    const budget = epsilonFor(32 / 128, 2, 4, 1e-5) * 1.0001;
    const report = await trainWith({ clip: 8, noiseMultiplier: 2, epsilon: budget }, 20);
    expect(report.steps).toBe(4);
    expect(report.stoppedEarly).toBe(true);
    expect(report.recordPrivacy!.epsilon).toBeLessThanOrEqual(budget);
    expect(report.recordPrivacy!.budgetSpent).toBe(true);
  });

  it('derives σ from an ε budget over the planned steps', async () => {
    const report = await trainWith({ clip: 8, epsilon: 2 }, 5);
    expect(report.steps).toBe(5);
    expect(report.recordPrivacy!.epsilon).toBeLessThanOrEqual(2);
    expect(report.recordPrivacy!.epsilon).toBeGreaterThan(1.9);
  });
});

describe('record-level DP flags', () => {
  it('map onto mezo train, mezo simulate and mezo coordinator configs', () => {
    const t = resolveTrainConfig({ dpRecordClip: 4, dpRecordEpsilon: 3 }, {});
    expect(t.train.recordDp).toEqual({ clip: 4, epsilon: 3, delta: 1e-5 });
    const s = resolveSimulateConfig({ dpRecordClip: 4, dpRecordNoiseMultiplier: 1.5, dpPrivate: true }, {});
    expect(s.recordDp).toEqual({ clip: 4, noiseMultiplier: 1.5, delta: 1e-5, private: true });
    const c = resolveCoordinatorConfig({ dpRecordClip: 4, dpRecordEpsilon: 3, dpRecordShardSize: 40, dpRecordFleetSize: 100, dpPrivate: true }, {});
    expect(c.recordDp).toEqual({ clip: 4, epsilon: 3, delta: 1e-5, private: true, shardSize: 40, fleetSize: 100 });
    expect(resolveCoordinatorConfig({}, { MEZO_COORDINATOR_DP_RECORD_CLIP: '2', MEZO_COORDINATOR_DP_RECORD_NOISE_MULTIPLIER: '1', MEZO_COORDINATOR_DP_RECORD_SHARD_SIZE: '30' }).recordDp).toMatchObject({
      clip: 2,
      noiseMultiplier: 1,
      shardSize: 30,
    });
  });

  it("map the agent's privacy floor onto mezo agent's config", () => {
    expect(resolveAgentConfig({ agentId: 'a', dpMaxClip: 64, dpMinNoiseMultiplier: 1, dpRequirePrivate: true }, {}).privacyFloor).toEqual({ maxClip: 64, minNoiseMultiplier: 1, requirePrivate: true });
    expect(resolveAgentConfig({ agentId: 'a' }, { MEZO_AGENT_DP_MIN_NOISE_MULTIPLIER: '2' }).privacyFloor).toEqual({ minNoiseMultiplier: 2, requirePrivate: false });
    expect(resolveAgentConfig({ agentId: 'a' }, {}).privacyFloor).toBeUndefined();
    expect(() => resolveAgentConfig({ agentId: 'a', dpMaxClip: -1 }, {})).toThrow(/privacyFloor\.maxClip/);
  });

  it('refuses what cannot be accounted, naming the option', () => {
    expect(() => resolveCoordinatorConfig({ dpRecordClip: 4, dpRecordNoiseMultiplier: 1 }, {})).toThrow(/recordDp\.shardSize/);
    expect(() => resolveCoordinatorConfig({ dpRecordClip: 4, dpRecordEpsilon: 1, dpRecordShardSize: 40 }, {})).toThrow(/recordDp\.fleetSize/);
    expect(() => resolveSimulateConfig({ dpRecordClip: 4 }, {})).toThrow(/recordDp\.noiseMultiplier/);
    expect(() => resolveTrainConfig({ dpRecordClip: 0, dpRecordNoiseMultiplier: 1 }, {})).toThrow(/train\.recordDp\.clip/);
  });
});
