/**
 * The learning defaults of `mezo simulate` and `mezo train` (docs/learning.md): distinct seeds with q = 8 per
 * agent, a peak rate that grows as √(seeds per round) up to 80 seeds, and a cosine decay over the run; the
 * robust (shared-seed) and pool modes keep one seed per agent and their own rates; `mezo train` averages 16
 * perturbations per step.
 */
import { describe, expect, it } from 'vitest';
import { resolveTrainConfig } from '../../../cli/train-command.js';
import { learningRateAt } from '../../../shared/optim/lr-schedule.js';
import { defaultSimulateLr, parseSimulateOptions } from '../../../simulation/simulate.js';

describe('mezo simulate learning defaults', () => {
  it('10 agents × 8 distinct seeds per round, peak rate 8e-3, decaying to 0 over the run', () => {
    const o = parseSimulateOptions({});
    expect(o).toMatchObject({ agentsPerRound: 10, seedsPerAgent: 8, seedMode: 'distinct', rounds: 300 });
    expect(o.schedule).toMatchObject({ kind: 'cosine', lr: 8e-3, minLr: 0, totalSteps: 300 });
    expect(learningRateAt(o.schedule, 0)).toBe(8e-3);
    expect(learningRateAt(o.schedule, 150)).toBeCloseTo(4e-3, 15);
    expect(learningRateAt(o.schedule, 300)).toBe(0);
    // A longer run decays over its own length.
    expect(parseSimulateOptions({ rounds: 1500 }).schedule).toMatchObject({ kind: 'cosine', totalSteps: 1500 });
  });

  it('scales the default rate by √(seeds per round / 80) below 80 seeds, and never above 8e-3', () => {
    expect(parseSimulateOptions({ seedsPerAgent: 1 }).schedule.lr).toBeCloseTo(8e-3 * Math.sqrt(10 / 80), 15);
    expect(parseSimulateOptions({ agentsPerRound: 5, seedsPerAgent: 4 }).schedule.lr).toBeCloseTo(4e-3, 15);
    expect(parseSimulateOptions({ agentsPerRound: 50 }).schedule.lr).toBe(8e-3);
    expect(defaultSimulateLr('distinct', 80)).toBe(8e-3);
    // Given values win.
    expect(parseSimulateOptions({ schedule: { lr: 1e-3, kind: 'constant' } }).schedule).toMatchObject({ kind: 'constant', lr: 1e-3 });
  });

  it('keeps one seed per agent and the old rates with shared seeds (robust aggregation) and in pool mode', () => {
    const robust = parseSimulateOptions({ aggregation: 'median' });
    expect(robust).toMatchObject({ seedMode: 'shared', seedsPerAgent: 1 });
    expect(robust.schedule.lr).toBe(4e-4);
    const pool = parseSimulateOptions({ seedMode: 'pool', poolSize: 4 });
    expect(pool).toMatchObject({ seedsPerAgent: 1 });
    expect(pool.schedule.lr).toBe(2e-3);
    expect(() => parseSimulateOptions({ seedMode: 'pool', poolSize: 4, seedsPerAgent: 5 })).toThrow(/seedsPerAgent: must not exceed poolSize/);
  });
});

describe('mezo train learning defaults', () => {
  it('q = 16 perturbations per step, peak rate 3.2e-3, cosine decay over the run', () => {
    const { train } = resolveTrainConfig({}, {});
    expect(train).toMatchObject({ steps: 2000, perturbations: 16, batchSize: 64 });
    expect(train.schedule).toMatchObject({ kind: 'cosine', lr: 3.2e-3, minLr: 0, totalSteps: 2000 });
    expect(resolveTrainConfig({ steps: 500 }, {}).train.schedule.totalSteps).toBe(500);
    // A constant rate is still one flag away, and keeps the default peak.
    expect(resolveTrainConfig({ schedule: 'constant' }, {}).train.schedule).toMatchObject({ kind: 'constant', lr: 3.2e-3 });
    expect(resolveTrainConfig({ perturbations: 1, lr: 3e-4 }, {}).train).toMatchObject({ perturbations: 1, schedule: { lr: 3e-4 } });
  });
});
