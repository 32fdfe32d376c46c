/** Lazy V on the coordinator: with vPeriod ν the seeds keep one high word over ν rounds, distinct within a round. */
import { describe, expect, it } from 'vitest';
import { MezoStrategy, type AgentView } from '../../../coordinator/strategy.js';
import { SeededRng } from '../../../shared/data/rng.js';

const agents = (n: number): AgentView[] =>
  Array.from({ length: n }, (_, i) => ({ id: `a${i}`, capabilities: { memoryBytes: 1 << 30, cores: 1, noiseImpl: 'js' } }));
const high = (seed: bigint): bigint => seed >> 32n;
const seedsOf = (s: MezoStrategy, round: number, attempt = 0) =>
  s.configureRound({ round, attempt, version: round }, agents(6)).flatMap((a) => a.seeds);

describe('strategy seeds with vPeriod', () => {
  it('keeps the high word over a window of rounds (every attempt too) and keeps a round\'s seeds distinct', () => {
    const s = new MezoStrategy({ agentsPerRound: 6, seedsPerAgent: 4, vPeriod: 5, seed: 9 });
    const byRound = [0, 1, 4, 5, 9, 10].map((r) => seedsOf(s, r));
    for (const seeds of byRound) {
      expect(seeds).toHaveLength(24);
      expect(new Set(seeds).size).toBe(24);
      expect(new Set(seeds.map(high)).size).toBe(1);
    }
    const highs = byRound.map((seeds) => high(seeds[0]!));
    expect(highs[1]).toBe(highs[0]);
    expect(highs[2]).toBe(highs[0]);
    expect(highs[3]).not.toBe(highs[0]);
    expect(highs[4]).toBe(highs[3]);
    expect(highs[5]).not.toBe(highs[3]);
    // A retried attempt draws new low words in the same window.
    const retry = seedsOf(s, 1, 1);
    expect(high(retry[0]!)).toBe(highs[0]);
    expect(retry).not.toEqual(byRound[1]);
  });

  it('shares one set of seeds among agents in shared mode, with one high word', () => {
    const s = new MezoStrategy({ agentsPerRound: 3, seedsPerAgent: 3, seedMode: 'shared', aggregation: 'median', vPeriod: 2 });
    const assignments = s.configureRound({ round: 4, attempt: 0, version: 4 }, agents(3));
    for (const a of assignments) expect(a.seeds).toEqual(assignments[0]!.seeds);
    expect(new Set(assignments[0]!.seeds).size).toBe(3);
    expect(new Set(assignments[0]!.seeds.map(high)).size).toBe(1);
  });

  it('draws exactly the seeds it always drew with vPeriod 1', () => {
    const s = new MezoStrategy({ agentsPerRound: 6, seedsPerAgent: 2, seed: 9 });
    const chosenIds = s.configureRound({ round: 7, attempt: 0, version: 7 }, agents(6)).map((a) => a.agentId);
    const rng = new SeededRng(9, 'coordinator-seeds', 7, 0);
    const draw = () => BigInt(rng.nextUint32()) | (BigInt(rng.nextUint32()) << 32n);
    const expected = chosenIds.flatMap(() => [draw(), draw()]);
    expect(seedsOf(s, 7)).toEqual(expected);
  });

  it('refuses vPeriod in pool mode and outside its range, naming the field', () => {
    expect(() => new MezoStrategy({ seedMode: 'pool', poolSize: 8, vPeriod: 4 })).toThrow(/strategy: vPeriod: must be 1 in pool mode/);
    expect(() => new MezoStrategy({ vPeriod: 0 })).toThrow(/strategy: vPeriod/);
  });
});
