import { describe, expect, it } from 'vitest';
import { MezoStrategy, clipValue, median, trimmedMean, weightedMean, type AgentResult, type AgentView } from '../../../coordinator/strategy.js';

const agents = (n: number, cores = (i: number) => 1): AgentView[] =>
  Array.from({ length: n }, (_, i) => ({ id: `a${i}`, capabilities: { memoryBytes: 1 << 20, cores: cores(i), noiseImpl: 'js' } }));
const ctx = { round: 3, attempt: 0, version: 3 };

function result(agentId: string, seeds: bigint[], g: number[], sampleCount = 10): AgentResult {
  return { agentId, seeds, g, lossPlus: g.map(() => 1), lossMinus: g.map(() => 1), sampleCount };
}

describe('aggregation primitives', () => {
  it('weighted mean, median, trimmed mean and clipping', () => {
    expect(weightedMean([1, 3], [1, 3])).toBe(2.5);
    expect(() => weightedMean([1], [0])).toThrow(/weights\[0\] must be positive/);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(trimmedMean([100, 1, 2, 3, -100], 0.2)).toBe(2);
    expect(trimmedMean([1, 2], 0.2)).toBe(1.5);
    expect(() => trimmedMean([1], 0.5)).toThrow(/fraction/);
    expect(clipValue(5, 2)).toBe(2);
    expect(clipValue(-5, 2)).toBe(-2);
    expect(clipValue(5, undefined)).toBe(5);
  });
});

describe('MezoStrategy.configureRound', () => {
  it('samples m agents uniformly, deterministically, independent of connection order', () => {
    const s = new MezoStrategy({ agentsPerRound: 3, seed: 9 });
    const a = s.configureRound(ctx, agents(10));
    const b = s.configureRound(ctx, agents(10).reverse());
    expect(a.map((x) => x.agentId)).toEqual(b.map((x) => x.agentId));
    expect(new Set(a.map((x) => x.agentId)).size).toBe(3);
    expect(s.configureRound({ ...ctx, attempt: 1 }, agents(10)).map((x) => x.seeds[0])).not.toEqual(a.map((x) => x.seeds[0]));
    expect(s.configureRound(ctx, agents(2))).toHaveLength(2);
  });

  it('samples by capability: memory filter, then probability proportional to cores', () => {
    const s = new MezoStrategy({ agentsPerRound: 1, sampling: 'capability', minMemoryBytes: 1 << 20 });
    const fleet = agents(4, (i) => (i === 0 ? 100 : 1));
    fleet[3]!.capabilities.memoryBytes = 10;
    const picks = Array.from({ length: 200 }, (_, round) => s.configureRound({ ...ctx, round }, fleet)[0]!.agentId);
    expect(picks).not.toContain('a3');
    expect(picks.filter((p) => p === 'a0').length).toBeGreaterThan(170);
  });

  it('assigns one shared seed set, distinct seeds, or seeds from a K-seed pool', () => {
    const shared = new MezoStrategy({ agentsPerRound: 4, seedMode: 'shared', seedsPerAgent: 2 }).configureRound(ctx, agents(4));
    expect(shared.every((a) => a.seeds.length === 2 && a.seeds.join() === shared[0]!.seeds.join())).toBe(true);

    const distinct = new MezoStrategy({ agentsPerRound: 4, seedMode: 'distinct', seedsPerAgent: 3 }).configureRound(ctx, agents(4));
    expect(new Set(distinct.flatMap((a) => a.seeds)).size).toBe(12);
    expect(distinct.flatMap((a) => a.seeds).every((seed) => seed >= 0n && seed < 1n << 64n)).toBe(true);

    const pool = new MezoStrategy({ agentsPerRound: 4, seedMode: 'pool', poolSize: 3, seedsPerAgent: 2 }).configureRound(ctx, agents(4));
    const counts = new Map<bigint, number>();
    pool.flatMap((a) => a.seeds).forEach((seed) => counts.set(seed, (counts.get(seed) ?? 0) + 1));
    expect(counts.size).toBe(3);
    expect([...counts.values()].sort()).toEqual([2, 3, 3]);
    expect(() => new MezoStrategy({ seedMode: 'pool', poolSize: 2, seedsPerAgent: 3 })).toThrow(/seedsPerAgent: must not exceed poolSize/);
  });
});

describe('MezoStrategy.aggregate', () => {
  const seeds = [11n, 22n];

  it('sample-weighted mean per seed; coefficient −lr·aggregate / seeds', () => {
    const s = new MezoStrategy({ schedule: { lr: 0.5 } });
    const update = s.aggregate(ctx, [result('b', seeds, [1, 4], 30), result('a', seeds, [5, 8], 10)])!;
    expect(update.lr).toBe(0.5);
    expect(update.decay).toBe(1);
    expect(update.terms).toEqual([
      { seed: 11n, coeff: (-0.5 * 2) / 2 },
      { seed: 22n, coeff: (-0.5 * 5) / 2 },
    ]);
    expect(update.trainLoss).toBe(1);
  });

  it('clips before aggregating; median and trimmed mean resist an outlier', () => {
    const results = [result('a', [1n], [1]), result('b', [1n], [2]), result('c', [1n], [3]), result('d', [1n], [1e6]), result('e', [1n], [2])];
    const coeff = (config: ConstructorParameters<typeof MezoStrategy>[0]) => new MezoStrategy({ schedule: { lr: 1 }, ...config }).aggregate(ctx, results)!.terms[0]!.coeff;
    expect(coeff({ aggregation: 'median' })).toBe(-2);
    expect(coeff({ aggregation: 'trimmed-mean', trimFraction: 0.2 })).toBeCloseTo(-7 / 3, 12);
    expect(coeff({ aggregation: 'mean', clip: 3 })).toBeCloseTo(-11 / 5, 12);
    expect(coeff({ aggregation: 'mean' })).toBeLessThan(-1e5);
  });

  it('follows the learning-rate schedule and weight decay; returns null without results', () => {
    const s = new MezoStrategy({ schedule: { kind: 'linear', lr: 1, minLr: 0, totalSteps: 10 }, weightDecay: 0.1 });
    const update = s.aggregate({ ...ctx, round: 5 }, [result('a', [1n], [1])])!;
    expect(update.lr).toBeCloseTo(0.5, 12);
    expect(update.decay).toBe(Math.fround(1 - 0.5 * 0.1));
    expect(s.aggregate(ctx, [])).toBeNull();
  });

  it('keeps the default peak rate when a schedule names only its kind', () => {
    const s = new MezoStrategy({ schedule: { kind: 'cosine', totalSteps: 10 } });
    expect(s.config.schedule).toMatchObject({ kind: 'cosine', lr: new MezoStrategy().config.schedule.lr, totalSteps: 10 });
    expect(s.aggregate({ ...ctx, round: 10 }, [result('a', [1n], [1])])!.lr).toBe(0);
    expect(() => new MezoStrategy({ schedule: { kind: 'cosine' } })).toThrow(/schedule\.totalSteps: totalSteps is required/);
  });

  it('does not depend on the order results arrived in', () => {
    const s = new MezoStrategy({ aggregation: 'mean' });
    const a = result('a', [1n, 2n], [0.1, 0.2]);
    const b = result('b', [2n, 3n], [0.3, 0.4]);
    expect(s.aggregate(ctx, [a, b])).toEqual(s.aggregate(ctx, [b, a]));
  });
});
