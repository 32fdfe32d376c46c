/**
 * The learning defaults of `mezo simulate` and `mezo train` (docs/learning.md): distinct seeds with q = 32 per
 * agent, one forward pass per seed (the forward estimator) with Rademacher noise, a peak rate that grows as
 * √(seeds per round) up to 320 seeds, and a cosine decay over the run; the robust (shared-seed) and pool modes
 * keep one seed per agent, the central estimator and their own rates. `mezo train` likewise averages 32
 * forward perturbations per step.
 */
import { describe, expect, it } from 'vitest';
import { resolveTrainConfig } from '../../../cli/train-command.js';
import { learningRateAt } from '../../../shared/optim/lr-schedule.js';
import { defaultSimulateLr, parseSimulateOptions } from '../../../simulation/simulate.js';

describe('mezo simulate learning defaults', () => {
  it('10 agents × 32 distinct seeds per round, forward estimator, Rademacher noise, peak rate 1.6e-2, decaying to 0 over the run', () => {
    const o = parseSimulateOptions({});
    expect(o).toMatchObject({ agentsPerRound: 10, seedsPerAgent: 32, seedMode: 'distinct', rounds: 300, estimator: 'forward', distribution: 'rademacher' });
    expect(o.schedule).toMatchObject({ kind: 'cosine', lr: 1.6e-2, minLr: 0, totalSteps: 300 });
    expect(learningRateAt(o.schedule, 0)).toBe(1.6e-2);
    expect(learningRateAt(o.schedule, 150)).toBeCloseTo(8e-3, 15);
    expect(learningRateAt(o.schedule, 300)).toBe(0);
    // A longer run decays over its own length, from (300 / rounds)^(3/4) of the peak: less total noise than 300
    // rounds (∝ rounds · lr²), more progress (∝ rounds · lr).
    expect(parseSimulateOptions({ rounds: 1500 }).schedule).toMatchObject({ kind: 'cosine', totalSteps: 1500 });
    expect(parseSimulateOptions({ rounds: 1500 }).schedule.lr).toBeCloseTo(1.6e-2 / 5 ** 0.75, 15);
    const noise = (rounds: number): number => rounds * defaultSimulateLr('distinct', 320, rounds) ** 2;
    const progress = (rounds: number): number => rounds * defaultSimulateLr('distinct', 320, rounds);
    for (const [short, long] of [[300, 600], [600, 1500], [1500, 6000]] as const) {
      expect(noise(long)).toBeLessThan(noise(short));
      expect(progress(long)).toBeGreaterThan(progress(short));
    }
    expect(parseSimulateOptions({ rounds: 100 }).schedule.lr).toBe(1.6e-2);
    expect(parseSimulateOptions({ rounds: 1500, aggregation: 'median' }).schedule.lr).toBe(4e-4);
  });

  it('scales the default rate by √(seeds per round / 80), up to 1.6e-2 at 320 seeds', () => {
    expect(parseSimulateOptions({ seedsPerAgent: 1 }).schedule.lr).toBeCloseTo(8e-3 * Math.sqrt(10 / 80), 15);
    expect(parseSimulateOptions({ agentsPerRound: 5, seedsPerAgent: 4 }).schedule.lr).toBeCloseTo(4e-3, 15);
    expect(parseSimulateOptions({ seedsPerAgent: 8 }).schedule.lr).toBe(8e-3);
    expect(parseSimulateOptions({ agentsPerRound: 50 }).schedule.lr).toBe(1.6e-2);
    expect(defaultSimulateLr('distinct', 80)).toBe(8e-3);
    expect(defaultSimulateLr('distinct', 320)).toBe(1.6e-2);
    // Given values win.
    expect(parseSimulateOptions({ schedule: { lr: 1e-3, kind: 'constant' } }).schedule).toMatchObject({ kind: 'constant', lr: 1e-3 });
  });

  it('picks the forward estimator only where it works: two seeds or more per agent and no record-level DP', () => {
    expect(parseSimulateOptions({ seedsPerAgent: 1 }).estimator).toBe('central');
    expect(parseSimulateOptions({ seedsPerAgent: 2 }).estimator).toBe('forward');
    expect(parseSimulateOptions({ recordDp: { clip: 1, noiseMultiplier: 1 } }).estimator).toBe('central');
    expect(parseSimulateOptions({ estimator: 'central' }).estimator).toBe('central');
    expect(parseSimulateOptions({ distribution: 'gaussian' })).toMatchObject({ distribution: 'gaussian', estimator: 'forward' });
  });

  it('keeps one seed per agent, the central estimator and the old rates with shared seeds (robust aggregation) and in pool mode', () => {
    const robust = parseSimulateOptions({ aggregation: 'median' });
    expect(robust).toMatchObject({ seedMode: 'shared', seedsPerAgent: 1, estimator: 'central' });
    expect(robust.schedule.lr).toBe(4e-4);
    const pool = parseSimulateOptions({ seedMode: 'pool', poolSize: 4 });
    expect(pool).toMatchObject({ seedsPerAgent: 1, estimator: 'central' });
    expect(pool.schedule.lr).toBe(2e-3);
    expect(() => parseSimulateOptions({ seedMode: 'pool', poolSize: 4, seedsPerAgent: 5 })).toThrow(/seedsPerAgent: must not exceed poolSize/);
  });
});

describe('mezo train learning defaults', () => {
  it('q = 32 perturbations per step, forward estimator, Rademacher noise, peak rate 4.5e-3, cosine decay over the run', () => {
    const { train } = resolveTrainConfig({}, {});
    expect(train).toMatchObject({ steps: 2000, perturbations: 32, batchSize: 64, estimator: 'forward', distribution: 'rademacher' });
    expect(train.schedule).toMatchObject({ kind: 'cosine', lr: 4.5e-3, minLr: 0, totalSteps: 2000 });
    expect(resolveTrainConfig({ steps: 500 }, {}).train.schedule.totalSteps).toBe(500);
    // A constant rate is still one flag away, and keeps the default peak.
    expect(resolveTrainConfig({ schedule: 'constant' }, {}).train.schedule).toMatchObject({ kind: 'constant', lr: 4.5e-3 });
    // One perturbation per step, or record-level DP, keeps the central estimator; a given one wins.
    expect(resolveTrainConfig({ perturbations: 1, lr: 3e-4 }, {}).train).toMatchObject({ perturbations: 1, estimator: 'central', schedule: { lr: 3e-4 } });
    expect(resolveTrainConfig({ dpRecordClip: 1, dpRecordNoiseMultiplier: 1 }, {}).train.estimator).toBe('central');
    expect(resolveTrainConfig({ estimator: 'central' }, {}).train.estimator).toBe('central');
  });
});
