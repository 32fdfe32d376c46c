/**
 * Record-level DP (shared/privacy/record-dp.ts): the per-example clip and the noise of the released g, the range
 * the coordinator checks, and the accountant's ε against the plain subsampled-Gaussian accountant.
 */
import { describe, expect, it } from 'vitest';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import {
  RecordDpAccountant,
  maxAbsRecordDpG,
  noisedProjectedGradient,
  parseRecordDp,
  perSeedClip,
  recordDpOptionsSchema,
  recordNoiseMultiplierFor,
  recordSamplingRate,
  resolveRecordDp,
} from '../../../shared/privacy/record-dp.js';

const dp = { clip: 2, noiseMultiplier: 1.5 };

describe('record-level DP mechanism', () => {
  it('clips each example to C/√k, sums, and divides by the task batch size', () => {
    // ε = 0.5, so each example's g is (plus − minus); k = 4 seeds: the bound is 2/2 = 1.
    const plus = [0.2, 5, -3, 0.4];
    const minus = [0, 0, 0, 0.4];
    const g = noisedProjectedGradient(plus, minus, 0.5, dp, 4, 8, () => 0);
    expect(perSeedClip(dp, 4)).toBe(1);
    expect(g).toBeCloseTo((0.2 + 1 - 1 + 0) / 8, 12);
  });

  it('adds noise of standard deviation σC to the sum (σC/B on g)', () => {
    expect(noisedProjectedGradient([0], [0], 1, dp, 1, 4, () => 1)).toBeCloseTo((1.5 * 2) / 4, 12);
    // The cryptographic generator: over 4000 draws the sample deviation is within 10 % of σC/B (about 6 standard errors).
    const draws = Array.from({ length: 4000 }, () => noisedProjectedGradient([0, 0], [0, 0], 1, dp, 1, 4));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const sd = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1));
    expect(Math.abs(sd / ((1.5 * 2) / 4) - 1)).toBeLessThan(0.1);
    expect(new Set(draws).size).toBe(draws.length);
  });

  it('gives NaN for a non-finite loss and refuses mismatched inputs', () => {
    expect(noisedProjectedGradient([Number.NaN], [0], 1, dp, 1, 4, () => 0)).toBeNaN();
    expect(() => noisedProjectedGradient([0, 0], [0], 1, dp, 1, 4)).toThrow(/per-example losses/);
    expect(() => noisedProjectedGradient([0, 0, 0], [0, 0, 0], 1, dp, 1, 2)).toThrow(/batchSize/);
    expect(() => perSeedClip(dp, 0)).toThrow(/seeds/);
  });

  it('bounds an honest release at C/√k plus ten noise deviations', () => {
    expect(maxAbsRecordDpG(dp, 4, 8)).toBeCloseTo(1 + (10 * 1.5 * 2) / 8, 12);
    // The largest possible clipped sum with zero noise stays inside the bound.
    expect(Math.abs(noisedProjectedGradient(Array(8).fill(100), Array(8).fill(0), 1, dp, 4, 8, () => 0))).toBeLessThanOrEqual(maxAbsRecordDpG(dp, 4, 8));
  });

  it('validates its settings, naming the field', () => {
    expect(parseRecordDp({ clip: 1, noiseMultiplier: 1 })).toEqual({ clip: 1, noiseMultiplier: 1, private: false });
    expect(() => parseRecordDp({ clip: 0, noiseMultiplier: 1 })).toThrow(/recordDp\.clip/);
    expect(() => parseRecordDp({ clip: 1 })).toThrow(/recordDp\.noiseMultiplier/);
    expect(() => parseRecordDp({ clip: 1, noiseMultiplier: 1, extra: 1 })).toThrow(/recordDp/);
  });
});

describe('record-level DP accountant', () => {
  it('is the subsampled Gaussian at q = agent rate × B/n', () => {
    const sigma = 1.1;
    const a = new RecordDpAccountant(parseRecordDp({ clip: 1, noiseMultiplier: sigma }), 32, 45, 1e-5);
    for (let r = 0; r < 300; r++) a.step(0.1);
    expect(a.rounds).toBe(300);
    expect(a.epsilon).toBeCloseTo(epsilonFor((0.1 * 32) / 45, sigma, 300, 1e-5), 12);
    expect(recordSamplingRate(64, 45)).toBe(1);
  });

  it('without sampling (a shard no larger than the batch, every agent asked) is the Gaussian closed form', () => {
    const a = new RecordDpAccountant(parseRecordDp({ clip: 1, noiseMultiplier: 4 }), 64, 50, 1e-5);
    for (let r = 0; r < 10; r++) a.step(1);
    // RDP of T Gaussian releases at multiplier σ is Tα/(2σ²); the conversion is the accountant's.
    expect(a.epsilon).toBeCloseTo(epsilonFor(1, 4, 10, 1e-5), 12);
    expect(a.epsilon).toBeGreaterThan(epsilonFor(1, 4, 9, 1e-5));
  });

  it('derives σ that meets the budget over the planned rounds and stops before it is exceeded', () => {
    const sigma = recordNoiseMultiplierFor({ epsilon: 3, delta: 1e-5 }, 0.1, 32, 45, 300);
    expect(epsilonFor((0.1 * 32) / 45, sigma, 300, 1e-5)).toBeLessThanOrEqual(3);
    expect(epsilonFor((0.1 * 32) / 45, sigma * 0.99, 300, 1e-5)).toBeGreaterThan(3);
    const options = recordDpOptionsSchema(false).parse({ clip: 4, epsilon: 3 });
    const { dp: resolved, accountant } = resolveRecordDp(options, { agentsPerRound: 10, fleetSize: 100, batchSize: 32, shardSize: 45, rounds: 300 });
    expect(resolved.noiseMultiplier).toBe(sigma);
    let rounds = 0;
    while (!accountant.nextRoundExceedsBudget() && rounds < 1000) {
      accountant.step(0.1);
      rounds++;
    }
    expect(rounds).toBeGreaterThanOrEqual(300);
    expect(accountant.epsilon).toBeLessThanOrEqual(3);
    expect(accountant.spent()).toMatchObject({ clip: 4, private: false, delta: 1e-5, shardSize: 45, budgetSpent: true });
  });

  it("refuses command options that cannot be accounted, naming the field", () => {
    expect(recordDpOptionsSchema(true).safeParse({ clip: 1, noiseMultiplier: 1 }).error?.issues[0]?.path).toEqual(['shardSize']);
    expect(recordDpOptionsSchema(true).safeParse({ clip: 1, epsilon: 1, shardSize: 40 }).error?.issues[0]?.path).toEqual(['fleetSize']);
    expect(recordDpOptionsSchema(false).safeParse({ clip: 1, noiseMultiplier: 1, shardSize: 40 }).error?.issues[0]?.path).toEqual(['shardSize']);
    expect(recordDpOptionsSchema(false).safeParse({ clip: 1 }).error?.issues[0]?.path).toEqual(['noiseMultiplier']);
  });
});

describe("the coordinator's record-level accounting", () => {
  it('counts every attempt of a committed round at its agent rate, and stops the job before the budget is exceeded', async () => {
    const { trackRecordPrivacy } = await import('../../../coordinator/record-dp.js');
    let listener: ((report: never) => void) | undefined;
    const stops: unknown[] = [];
    const coordinator = {
      options: { rounds: 100 },
      onRound: (l: (report: never) => void) => {
        listener = l;
        return () => {};
      },
      stop: (o: unknown) => stops.push(o),
    };
    const dp = parseRecordDp({ clip: 1, noiseMultiplier: 1 });
    const budget = epsilonFor((5 / 10) * (32 / 64), 1, 4, 1e-5) * 1.0001;
    const accountant = new RecordDpAccountant(dp, 32, 64, 1e-5, budget);
    trackRecordPrivacy(coordinator as never, accountant);
    listener!({ round: 0, attempt: 2, asked: 5, connected: 10 } as never);
    expect(accountant.rounds).toBe(3);
    expect(accountant.epsilon).toBeCloseTo(epsilonFor(0.25, 1, 3, 1e-5), 12);
    expect(stops).toEqual([]);
    listener!({ round: 1, attempt: 0, asked: 5, connected: 10 } as never);
    expect(accountant.rounds).toBe(4);
    expect(stops).toEqual([{ endJob: true }]);
  });
});
