import { describe, expect, it } from 'vitest';
import {
  agentDatasets,
  checkPartition,
  LocalDataset,
  loadMnist,
  partitionDirichlet,
  partitionIid,
  partitionLabelShards,
  partitionStats,
  type Partition,
} from '../../../shared/data/index.js';

const mnist = loadMnist();

/** A small labelled set: n rows, labels cycling over `classes`. */
function cyclic(n: number, classes: number): LocalDataset<Float32Array> {
  return new LocalDataset({
    features: Float32Array.from({ length: n }, (_, i) => i),
    labels: Int32Array.from({ length: n }, (_, i) => i % classes),
    featureShape: [1],
    numClasses: classes,
  });
}

function expectDisjoint(p: Partition, complete: boolean): void {
  expect(() => checkPartition(p, p.datasetSize)).not.toThrow();
  const total = p.agents.reduce((a, l) => a + l.length, 0);
  expect(total + p.unassigned).toBe(p.datasetSize);
  if (complete) expect(p.unassigned).toBe(0);
  for (const list of p.agents) for (let j = 1; j < list.length; j++) expect(list[j]! > list[j - 1]!).toBe(true);
}

const lists = (p: Partition): number[][] => p.agents.map((l) => Array.from(l));

describe('partitionIid', () => {
  it('splits into disjoint, complete, near-equal shares that mirror the label mix', () => {
    const p = partitionIid(mnist, { numAgents: 7, seed: 1 });
    expectDisjoint(p, true);
    expect(p.agents.map((l) => l.length)).toEqual([1429, 1429, 1429, 1429, 1428, 1428, 1428]);
    expect(partitionStats(mnist, p).meanLabelTv).toBeLessThan(0.05);
  });

  it('is deterministic by seed', () => {
    const a = partitionIid(mnist, { numAgents: 5, seed: 3 });
    expect(lists(partitionIid(mnist, { numAgents: 5, seed: 3 }))).toEqual(lists(a));
    expect(lists(partitionIid(mnist, { numAgents: 5, seed: 4 }))).not.toEqual(lists(a));
  });

  it('gives exactly perAgent examples when asked, leaving the rest unassigned', () => {
    const p = partitionIid(mnist, { numAgents: 10, seed: 1, perAgent: 100 });
    expectDisjoint(p, false);
    expect(p.unassigned).toBe(9000);
    expect(p.agents.every((l) => l.length === 100)).toBe(true);
  });

  it('refuses to create empty agents', () => {
    expect(() => partitionIid(cyclic(5, 2), { numAgents: 6, seed: 1 })).toThrow(
      'partitionIid: options.numAgents (6) exceeds the dataset size (5); every agent needs an example',
    );
    expect(() => partitionIid(mnist, { numAgents: 0, seed: 1 })).toThrow(
      'partitionIid: options.numAgents must be an integer in [1, 1048576], got 0',
    );
    expect(() => partitionIid(mnist, { numAgents: 2 } as never)).toThrow('partitionIid: options.seed is required');
  });
});

describe('partitionLabelShards', () => {
  it('deals k label shards per agent: disjoint, complete, few classes per agent', () => {
    const p = partitionLabelShards(mnist, { numAgents: 20, shardsPerAgent: 2, seed: 5 });
    expectDisjoint(p, true);
    expect(p.agents.every((l) => l.length === 500)).toBe(true);
    const stats = partitionStats(mnist, p);
    // Each 250-image shard spans at most two digits, so an agent sees at most four, usually two.
    expect(Math.max(...stats.counts.map((row) => row.filter((c) => c > 0).length))).toBeLessThanOrEqual(4);
    expect(stats.meanClassesPresent).toBeLessThan(3);
    expect(stats.meanLabelTv).toBeGreaterThan(0.6);
    expect(lists(partitionLabelShards(mnist, { numAgents: 20, shardsPerAgent: 2, seed: 5 }))).toEqual(lists(p));
  });

  it('covers every example even when shards do not divide the dataset', () => {
    const p = partitionLabelShards(cyclic(103, 3), { numAgents: 4, shardsPerAgent: 3, seed: 1 });
    expectDisjoint(p, true);
    expect(() => partitionLabelShards(cyclic(5, 2), { numAgents: 3, seed: 1 })).toThrow(
      'partitionLabelShards: numAgents × shardsPerAgent (3 × 2 = 6) exceeds the dataset size (5)',
    );
  });
});

describe('partitionDirichlet', () => {
  it('is disjoint and complete, and its label skew grows as α shrinks', () => {
    const skew = (alpha: number): number => {
      const p = partitionDirichlet(mnist, { numAgents: 20, alpha, seed: 7 });
      expectDisjoint(p, true);
      expect(p.emptyAgents).toEqual([]);
      return partitionStats(mnist, p).meanLabelTv;
    };
    const tv = [100, 1, 0.1].map(skew);
    expect(tv[0]!).toBeLessThan(0.1);
    expect(tv[1]!).toBeGreaterThan(tv[0]! + 0.15);
    expect(tv[2]!).toBeGreaterThan(tv[1]! + 0.15);
  });

  it('by-agent mode gives equal shares with the same trend', () => {
    const tv = [100, 0.1].map((alpha) => {
      const p = partitionDirichlet(mnist, { numAgents: 10, alpha, seed: 2, mode: 'by-agent' });
      expectDisjoint(p, true);
      expect(p.agents.every((l) => l.length === 1000)).toBe(true);
      return partitionStats(mnist, p).meanLabelTv;
    });
    expect(tv[1]!).toBeGreaterThan(tv[0]! + 0.3);
  });

  it('is deterministic by seed', () => {
    const a = partitionDirichlet(mnist, { numAgents: 8, alpha: 0.5, seed: 11 });
    expect(lists(partitionDirichlet(mnist, { numAgents: 8, alpha: 0.5, seed: 11 }))).toEqual(lists(a));
    expect(lists(partitionDirichlet(mnist, { numAgents: 8, alpha: 0.5, seed: 12 }))).not.toEqual(lists(a));
  });

  it('re-draws until every agent has minPerAgent examples, or reports empty agents when allowed', () => {
    const small = cyclic(40, 4);
    // With α = 0.2, 8 agents and 40 examples the first draws of seed 3 leave someone empty.
    const p = partitionDirichlet(small, { numAgents: 8, alpha: 0.2, seed: 3, minPerAgent: 1 });
    expect(p.emptyAgents).toEqual([]);
    expect(p.attempts).toBeGreaterThan(1);
    expectDisjoint(p, true);
    const loose = partitionDirichlet(small, { numAgents: 8, alpha: 0.2, seed: 3, allowEmpty: true });
    expect(loose.attempts).toBe(1);
    expect(loose.emptyAgents.length).toBeGreaterThan(0);
    expect(loose.emptyAgents.every((k) => loose.agents[k]!.length === 0)).toBe(true);
    expectDisjoint(loose, true);
    const hopeless = { numAgents: 10, alpha: 0.001, seed: 3, minPerAgent: 4, maxAttempts: 3 };
    expect(() => partitionDirichlet(small, hopeless)).toThrow(
      /partitionDirichlet: no draw in 3 attempts gave every agent >= 4 examples/,
    );
    expect(() => partitionDirichlet(small, { numAgents: 10, alpha: 0, seed: 3 })).toThrow(
      'partitionDirichlet: options.alpha must be a finite number > 0, got 0',
    );
  });
});

describe('checkPartition and agentDatasets', () => {
  it('catches overlaps and out-of-range positions', () => {
    const overlap = { ...partitionIid(cyclic(10, 2), { numAgents: 2, seed: 1 }) };
    const bad = { ...overlap, agents: [Uint32Array.of(1, 2), Uint32Array.of(2, 3)] };
    expect(() => checkPartition(bad, 10)).toThrow('checkPartition: example 2 is assigned to agent 0 and agent 1');
    expect(() => checkPartition({ ...overlap, agents: [Uint32Array.of(10)] }, 10)).toThrow(
      'checkPartition: agent 0 position 0 is 10, outside [0, 10)',
    );
  });

  it('turns a partition into per-agent views', () => {
    const p = partitionLabelShards(mnist, { numAgents: 4, shardsPerAgent: 1, seed: 1 });
    const views = agentDatasets(mnist, p);
    expect(views.map((v) => v.size)).toEqual([2500, 2500, 2500, 2500]);
    expect(views[2]!.name).toBe('mnist/agent-2');
    expect(Array.from(views[2]!.features(0))).toEqual(Array.from(mnist.features(p.agents[2]![0]!)));
  });
});
