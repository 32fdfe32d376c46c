/**
 * The optimiser options of MezoStrategy: seed-space momentum (a window of past rounds' terms, or a velocity over
 * the K-seed pool), the loss-jump guard (an undo entry) and reduce-on-plateau — all of them written into the
 * entries as ordinary (seed, coefficient) terms.
 */
import { describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';
import { resolveSimulateConfig } from '../../../cli/simulate-command.js';
import { CentralDpStrategy } from '../../../coordinator/dp-strategy.js';
import { MezoStrategy, type AgentResult, type AgentView, type StrategyConfigInput } from '../../../coordinator/strategy.js';
import { learningRateAt, lrScheduleSchema } from '../../../shared/optim/lr-schedule.js';

const fleet: AgentView[] = Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, capabilities: { memoryBytes: 1 << 20, cores: 1, noiseImpl: 'js' } }));

/** Runs `rounds` rounds through configureRound and aggregate; every answer's g is gOf(round, seed), its loss lossOf(round). */
function drive(config: StrategyConfigInput, rounds: number, gOf: (round: number, seed: bigint) => number = () => 1, lossOf: (round: number) => number = () => 1) {
  const strategy = new MezoStrategy({ agentsPerRound: 2, seedsPerAgent: 2, schedule: { lr: 0.1 }, ...config });
  const entries = [];
  const fresh = [];
  for (let round = 0; round < rounds; round++) {
    const context = { round, attempt: 0, version: round };
    const results: AgentResult[] = strategy.configureRound(context, fleet).map(({ agentId, seeds }) => ({
      agentId,
      seeds,
      g: seeds.map((s) => gOf(round, s)),
      lossPlus: seeds.map(() => lossOf(round)),
      lossMinus: seeds.map(() => lossOf(round)),
      sampleCount: 8,
    }));
    entries.push(strategy.aggregate(context, results)!);
    fresh.push(strategy.optimiserState()!.fresh);
  }
  return { strategy, entries, fresh };
}

const coeffOf = (terms: ReadonlyArray<{ seed: bigint; coeff: number }>, seed: bigint): number | undefined => terms.find((t) => t.seed === seed)?.coeff;

describe('seed-space momentum over a window of rounds', () => {
  it('re-applies each earlier round\'s fresh terms scaled by beta^age, up to the window, as plain terms', () => {
    const beta = 0.5;
    const { entries, fresh } = drive({ momentum: { beta, window: 2, normalize: false } }, 5);
    // Without normalisation a fresh term is −lr·g/seeds = −0.1/4.
    expect(fresh[0]!.every((t) => Math.abs(t.coeff + 0.025) < 1e-15)).toBe(true);
    expect(entries[0]!.terms).toHaveLength(4);
    expect(entries[1]!.terms).toHaveLength(8);
    expect(entries[4]!.terms).toHaveLength(12);
    for (const { seed, coeff } of fresh[2]!) {
      expect(coeffOf(entries[2]!.terms, seed)).toBe(coeff);
      expect(coeffOf(entries[3]!.terms, seed)).toBeCloseTo(coeff * beta, 15);
      expect(coeffOf(entries[4]!.terms, seed)).toBeCloseTo(coeff * beta * beta, 15);
    }
    // Past the window, round 1's directions are no longer in the entry of round 4.
    for (const { seed } of fresh[1]!) expect(coeffOf(entries[4]!.terms, seed)).toBeUndefined();
    // Each entry names a seed once.
    for (const e of entries) expect(new Set(e.terms.map((t) => t.seed)).size).toBe(e.terms.length);
  });

  it('normalised, gives every direction the same total step as without momentum', () => {
    const beta = 0.9;
    const window = 3;
    const { entries, fresh } = drive({ momentum: { beta, window } }, 8, (round, seed) => Number(seed % 5n) - 2 + round / 10);
    const plain = drive({}, 8, (round, seed) => Number(seed % 5n) - 2 + round / 10);
    // Round 2's direction, applied over rounds 2..5, adds up to its coefficient without momentum.
    for (const [k, { seed }] of fresh[2]!.entries()) {
      const total = [2, 3, 4, 5].reduce((sum, r) => sum + coeffOf(entries[r]!.terms, seed)!, 0);
      expect(total).toBeCloseTo(plain.entries[2]!.terms[k]!.coeff, 12);
      expect(plain.entries[2]!.terms[k]!.seed).toBe(seed);
      expect(coeffOf(entries[6]!.terms, seed)).toBeUndefined();
    }
  });

  it('remembers only the attempt that committed: a retried round replaces its own state', () => {
    const strategy = new MezoStrategy({ agentsPerRound: 1, seedsPerAgent: 1, schedule: { lr: 1 }, momentum: { beta: 0.5, window: 2, normalize: false } });
    const answer = (round: number, attempt: number, g: number): AgentResult[] =>
      strategy.configureRound({ round, attempt, version: round }, fleet).map(({ agentId, seeds }) => ({ agentId, seeds, g: [g], lossPlus: [1], lossMinus: [1], sampleCount: 1 }));
    strategy.aggregate({ round: 0, attempt: 0, version: 0 }, answer(0, 0, 1));
    // Round 1's first attempt aggregates, then (say) fails to commit; its retry is what round 2 builds on.
    strategy.aggregate({ round: 1, attempt: 0, version: 1 }, answer(1, 0, 100));
    const retry = strategy.aggregate({ round: 1, attempt: 1, version: 1 }, answer(1, 1, 2))!;
    expect(retry.terms.map((t) => t.coeff)).toEqual([-2, -0.5]);
    const next = strategy.aggregate({ round: 2, attempt: 0, version: 2 }, answer(2, 0, 4))!;
    expect(next.terms.map((t) => t.coeff).sort((a, b) => a - b)).toEqual([-4, -1, -0.25]);
  });

  it('in pool mode keeps a velocity over the pool\'s K seeds, so an entry never names more than K seeds', () => {
    const beta = 0.9;
    const { strategy, entries, fresh } = drive({ seedMode: 'pool', poolSize: 6, momentum: { beta } }, 12, (_, seed) => Number(seed % 3n) - 1);
    const pool = new Set(strategy.seedPool());
    for (const e of entries) {
      expect(e.terms.length).toBeLessThanOrEqual(6);
      expect(e.terms.every((t) => pool.has(t.seed))).toBe(true);
    }
    // v_t = beta·v_{t−1} + (1 − beta)·fresh_t, seed by seed.
    const velocity = new Map<bigint, number>();
    for (let t = 0; t < 12; t++) {
      for (const [seed, v] of velocity) velocity.set(seed, beta * v);
      for (const { seed, coeff } of fresh[t]!) velocity.set(seed, (velocity.get(seed) ?? 0) + (1 - beta) * coeff);
      for (const { seed, coeff } of entries[t]!.terms) expect(coeff).toBeCloseTo(velocity.get(seed)!, 14);
    }
  });

  it('is validated, naming the field', () => {
    expect(() => new MezoStrategy({ momentum: { beta: 1 } })).toThrow(/momentum\.beta/);
    expect(() => new MezoStrategy({ momentum: { beta: 0.5, window: 0 } })).toThrow(/momentum\.window/);
    expect(() => new MezoStrategy({ momentum: { window: 2 } as never })).toThrow(/momentum\.beta/);
  });
});

describe('the loss-jump guard', () => {
  it('answers an outlier loss with an entry that undoes the previous round, once', () => {
    const lossOf = (round: number): number => (round === 30 || round === 31 ? 5 : 1 + 0.01 * Math.sin(round));
    const { entries, strategy } = drive({ lossGuard: { threshold: 4, warmup: 10 } }, 34, (round, seed) => Number(seed % 4n) - 1.5 + round, lossOf);
    expect(entries[30]!.terms).toEqual(entries[29]!.terms.map(({ seed, coeff }) => ({ seed, coeff: -coeff })));
    // The round after an undo is not undone in turn (that would re-apply the update judged harmful).
    expect(entries[31]!.terms.map((t) => t.seed)).not.toEqual(entries[30]!.terms.map((t) => t.seed));
    expect(entries[31]!.terms.every((t) => t.coeff !== 0)).toBe(true);
    // No undo elsewhere: every other entry is the round's own four fresh terms.
    for (const [r, e] of entries.entries()) if (r !== 30) expect(e.terms).toHaveLength(4);
    expect(strategy.optimiserState()!.undo).toBe(false);
  });

  it('does nothing during its warm-up, nor on a steady loss', () => {
    const warm = drive({ lossGuard: { threshold: 1, warmup: 20 } }, 15, () => 1, (r) => (r === 10 ? 9 : 1));
    expect(warm.entries.every((e) => e.terms.length === 4 && e.terms.every((t) => t.coeff < 0))).toBe(true);
    const steady = drive({ lossGuard: { threshold: 3, warmup: 5 } }, 40, () => 1, (r) => 1 + 0.01 * Math.cos(r));
    expect(steady.entries.every((e) => e.terms.every((t) => t.coeff < 0))).toBe(true);
  });

  it('drops the undone round and the undo from momentum\'s history', () => {
    const lossOf = (round: number): number => (round === 12 ? 50 : 1 + 0.01 * Math.sin(round));
    const { entries, fresh } = drive({ lossGuard: { warmup: 5 }, momentum: { beta: 0.5, window: 3, normalize: false } }, 15, () => 1, lossOf);
    expect(fresh[12]).toEqual([]);
    for (const { seed } of fresh[11]!) {
      expect(coeffOf(entries[13]!.terms, seed)).toBeUndefined();
      expect(coeffOf(entries[14]!.terms, seed)).toBeUndefined();
    }
    for (const { seed, coeff } of fresh[10]!) expect(coeffOf(entries[13]!.terms, seed)).toBeCloseTo(coeff * 0.125, 15);
  });
});

describe('reduce-on-plateau', () => {
  it('cuts the rate by the factor when the smoothed loss stalls for patience rounds, down to minScale', () => {
    const schedule = lrScheduleSchema.parse({ kind: 'cosine', lr: 0.1, totalSteps: 200 });
    // Improving for 20 rounds, then flat.
    const lossOf = (round: number): number => (round < 20 ? 2 - round * 0.05 : 1);
    const { entries } = drive({ schedule, plateau: { patience: 10, factor: 0.5, minScale: 0.25, smoothing: 0.5 } }, 80, () => 1, lossOf);
    const scale = entries.map((e, round) => e.lr / learningRateAt(schedule, round));
    expect(scale[0]).toBe(1);
    expect(scale[19]).toBe(1);
    const cut = scale.findIndex((s) => s < 1);
    expect(cut).toBeGreaterThan(25);
    expect(cut).toBeLessThan(40);
    expect(scale[cut]).toBeCloseTo(0.5, 12);
    expect(scale.at(-1)).toBeCloseTo(0.25, 12);
    // The coefficients carry the rate in force.
    expect(entries[79]!.terms[0]!.coeff).toBeCloseTo(-entries[79]!.lr / 4, 15);
  });

  it('leaves an improving run alone', () => {
    const { entries } = drive({ plateau: { patience: 5 } }, 60, () => 1, (r) => 3 * 0.97 ** r);
    expect(entries.every((e) => e.lr === 0.1)).toBe(true);
  });
});

describe('with central DP', () => {
  it('is refused, naming the option (the DP wrapper releases its own noised terms)', () => {
    for (const option of [{ momentum: { beta: 0.5 } }, { lossGuard: {} }, { plateau: {} }]) {
      const inner = new MezoStrategy({ seedMode: 'distinct', ...option });
      expect(() => new CentralDpStrategy(inner, { clip: 1, noiseMultiplier: 1 })).toThrow(new RegExp(`strategy\\.${Object.keys(option)[0]} is not supported with central DP`));
    }
    expect(() => new CentralDpStrategy(new MezoStrategy({ seedMode: 'distinct' }), { clip: 1, noiseMultiplier: 1 })).not.toThrow();
  });
});

describe('flags', () => {
  it('reach the strategy from mezo simulate and mezo coordinator', () => {
    const sim = resolveSimulateConfig({ momentum: 0.9, momentumWindow: 6, lossGuard: 3, plateauPatience: 50, plateauFactor: 0.3 }, {});
    expect(sim.momentum).toEqual({ beta: 0.9, window: 6, normalize: true });
    expect(sim.lossGuard).toMatchObject({ threshold: 3 });
    expect(sim.plateau).toMatchObject({ patience: 50, factor: 0.3 });
    expect(resolveSimulateConfig({}, {}).momentum).toBeUndefined();
    expect(() => resolveSimulateConfig({ momentumWindow: 6 }, {})).toThrow(/momentum\.beta/);
    const job = resolveCoordinatorConfig({ momentum: 0.5, lossGuard: 4, plateauPatience: 20 }, {}).job.strategy;
    expect(job.momentum).toEqual({ beta: 0.5, window: 4, normalize: true });
    expect(job.lossGuard).toMatchObject({ threshold: 4, warmup: 20 });
    expect(job.plateau).toMatchObject({ patience: 20, factor: 0.5 });
  });
});
