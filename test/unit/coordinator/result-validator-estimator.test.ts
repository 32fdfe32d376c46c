import { describe, expect, it } from 'vitest';
import { ResultValidator } from '../../../coordinator/result-validator.js';
import { OpenRound } from '../../../coordinator/open-round.js';
import type { AgentRecord } from '../../../coordinator/agent-registry.js';
import { forwardGradients } from '../../../shared/optim/estimator.js';

const EPSILON = 1e-3;
const seeds = [11n, 12n, 13n, 14n];

function agent(): AgentRecord {
  return {
    id: 'a',
    token: '',
    capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' },
    session: undefined,
    version: 0,
    weightsSha256: undefined,
    weightsVersion: undefined,
    missedPings: 0,
    stats: { rejected: 0, rejections: {} } as unknown as AgentRecord['stats'],
    budget: { tokens: 0, at: 0 },
    sentVersion: 0,
    joinedAtVersion: 0,
  };
}

function take(estimator: 'central' | 'forward', result: { g: number[]; lossPlus: number[]; lossMinus: number[] }) {
  const validator = new ResultValidator({ batchSize: 32, maxAbsG: 1e6, epsilon: EPSILON, estimator, recordDp: undefined }, false);
  const open = new OpenRound(0, 0, 0, new Map([['a', seeds]]), 1, 60_000);
  const a = agent();
  validator.take(a, { round: 0, attempt: 0, seeds, sampleCount: 32, ...result }, open, 0);
  open.settle();
  return { accepted: open.results.has('a'), rejections: a.stats.rejections };
}

describe('result validation per estimator', () => {
  const losses = [0.9, 1.1, 1.0, 1.2];
  const { g, baseline } = forwardGradients(losses, EPSILON);

  it('forward: accepts g computed from the losses and the task mean as lossMinus', () => {
    expect(take('forward', { g, lossPlus: losses, lossMinus: losses.map(() => baseline) }).accepted).toBe(true);
  });

  it('forward: rejects a lossMinus that is not the mean of lossPlus, and a g the losses do not give', () => {
    const wrongBaseline = take('forward', { g, lossPlus: losses, lossMinus: [baseline, baseline, baseline + 0.01, baseline] });
    expect(wrongBaseline).toEqual({ accepted: false, rejections: { 'inconsistent-g': 1 } });
    const scaled = take('forward', { g: g.map((x) => x * 2), lossPlus: losses, lossMinus: losses.map(() => baseline) });
    expect(scaled).toEqual({ accepted: false, rejections: { 'inconsistent-g': 1 } });
  });

  it("a central job rejects a forward agent's answer and the other way round", () => {
    expect(take('central', { g, lossPlus: losses, lossMinus: losses.map(() => baseline) }).accepted).toBe(false);
    const central = losses.map((l, k) => (l - (l - 0.01 * k)) / (2 * EPSILON));
    expect(take('central', { g: central, lossPlus: losses, lossMinus: losses.map((l, k) => l - 0.01 * k) }).accepted).toBe(true);
    expect(take('forward', { g: central, lossPlus: losses, lossMinus: losses.map((l, k) => l - 0.01 * k) }).accepted).toBe(false);
  });
});
