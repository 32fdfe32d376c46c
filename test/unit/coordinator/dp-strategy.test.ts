import { describe, expect, it, vi } from 'vitest';
import { Coordinator, MezoStrategy, type RoundReport } from '../../../coordinator/index.js';
import { CentralDpStrategy, PrivacyConfigError, stopAtPrivacyBudget } from '../../../coordinator/dp-strategy.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { joinScriptedAgent } from '../../helpers/scripted-agent.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);

/** A scripted agent answering every task with g = 3 per seed (above the clip bound, so clipping binds). */
async function scripted(transport: InMemoryTransport, agentId: string) {
  const { client } = await joinScriptedAgent(transport, { agentId, baseSha256 }, (task, session) => {
    const g = task.seeds.map(() => 3);
    const lossPlus = task.seeds.map(() => 1 + 3 * task.epsilon);
    const lossMinus = task.seeds.map(() => 1 - 3 * task.epsilon);
    session.send({ kind: 'result', result: { round: task.round, attempt: task.attempt, seeds: task.seeds, g, lossPlus, lossMinus, sampleCount: 8 } });
  });
  return client;
}

describe('central agent-level DP', () => {
  it('noises the released coefficients, accounts ε per round at the real sampling rate and ends the job at the budget', async () => {
    const sigma = 1;
    const delta = 1e-5;
    const q = 2 / 4; // 2 agents asked per round out of 4 connected
    // A budget between the ε of 5 and of 6 rounds: exactly 5 rounds may be released.
    const budget = (epsilonFor(q, sigma, 5, delta) + epsilonFor(q, sigma, 6, delta)) / 2;
    const inner = new MezoStrategy({ agentsPerRound: 2, seedMode: 'shared', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 0.01 } });
    const dp = new CentralDpStrategy(inner, { clip: 1, noiseMultiplier: sigma, epsilon: budget, delta });
    const transport = new InMemoryTransport();
    const log = UpdateLog.inMemory({ jobId: 'dp', baseSha256, distribution: 'gaussian' });
    const reports: Array<{ round: number; epsilon: number; terms: RoundReport['terms'] }> = [];
    const c = new Coordinator({
      log,
      baseSlab: base,
      engine: noise,
      transport,
      strategy: dp,
      options: { jobId: 'dp', heartbeatMs: 50, rounds: 50, strategy: { agentsPerRound: 2 } },
      onRound: (r) => reports.push({ round: r.round, epsilon: dp.epsilon, terms: r.terms }),
    });
    stopAtPrivacyBudget(c, dp);
    await c.listen();
    for (const id of ['a', 'b', 'c', 'd']) await scripted(transport, id);
    // Every session registered before the first round, so each round samples 2 of 4 (the rate asserted below).
    await vi.waitFor(() => expect(c.connectedAgents()).toHaveLength(4), { timeout: 30_000, interval: 5 });
    const run = await c.run();
    expect(run).toMatchObject({ roundsRun: 5, version: 5, stopped: true });
    expect(log.entries()).toHaveLength(5);
    expect(c.jobEnd).toMatchObject({ reason: 'stopped', version: 5 });
    expect(dp.roundsReleased).toBe(5);
    reports.forEach((r, i) => expect(r.epsilon).toBeCloseTo(epsilonFor(q, sigma, i + 1, delta), 10));
    expect(dp.epsilon).toBeLessThanOrEqual(budget);
    expect(dp.nextRoundExceedsBudget()).toBe(true);
    // Each agent's [3, 3] is clipped to norm 1; both answer both seeds: per seed Σ/a = 2·(1/√2)/2, then −lr·v/2 seeds.
    const noiseless = (-0.01 * (2 * (1 / Math.SQRT2)) / 2) / 2;
    const coeffs = log.entries().flatMap((e) => e.terms.map((t) => t.coeff));
    expect(coeffs).toHaveLength(10);
    for (const coeff of coeffs) expect(coeff).not.toBe(noiseless);
    // The log holds exactly what was released (the noised terms the rounds reported), nothing else.
    expect(log.entries().map((e) => e.terms)).toEqual(reports.map((r) => r.terms));
    await c.close();
  });

  it('ends the job, rather than failing rounds, when the budget does not cover even the first round', async () => {
    const inner = new MezoStrategy({ agentsPerRound: 2, seedMode: 'shared' });
    // Below the ε of one round at q = 2/4: nothing may be released.
    const dp = new CentralDpStrategy(inner, { clip: 1, noiseMultiplier: 1, epsilon: epsilonFor(0.5, 1, 1, 1e-5) / 2 });
    const transport = new InMemoryTransport();
    const log = UpdateLog.inMemory({ jobId: 'dp', baseSha256, distribution: 'gaussian' });
    const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, strategy: dp, options: { jobId: 'dp', heartbeatMs: 50, rounds: 10, maxAttempts: 2, strategy: { agentsPerRound: 2 } } });
    stopAtPrivacyBudget(c, dp);
    await c.listen();
    for (const id of ['a', 'b', 'c', 'd']) await scripted(transport, id);
    await vi.waitFor(() => expect(c.connectedAgents()).toHaveLength(4), { timeout: 30_000, interval: 5 });
    expect(await c.run()).toMatchObject({ version: 0, stopped: true });
    expect(c.jobEnd).toMatchObject({ reason: 'stopped', version: 0 });
    expect(dp.exhausted).toBe(true);
    expect(dp.epsilon).toBe(0);
    await c.close();
  });

  it('adds noise of standard deviation σC/a to each released value', () => {
    const inner = new MezoStrategy({ agentsPerRound: 4, seedMode: 'shared', seedsPerAgent: 1, schedule: { kind: 'constant', lr: 1 } });
    const dp = new CentralDpStrategy(inner, { clip: 2, noiseMultiplier: 3 });
    const agents = ['a', 'b', 'c', 'd'].map((id) => ({ id, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' as const } }));
    const released: number[] = [];
    for (let round = 0; round < 2000; round++) {
      const context = { round, attempt: 0, version: round };
      const assignments = dp.configureRound(context, agents);
      const results = assignments.map((a) => ({ agentId: a.agentId, seeds: a.seeds, g: [0.5], lossPlus: [1], lossMinus: [1], sampleCount: 1 }));
      // coeff = −lr·v / 1 seed, v = Σ g / 4 + noise = 0.5 + N(0, (3·2/4)²)
      released.push(-dp.aggregate(context, results)!.terms[0]!.coeff);
    }
    const mean = released.reduce((a, b) => a + b, 0) / released.length;
    const sd = Math.sqrt(released.reduce((a, b) => a + (b - mean) ** 2, 0) / (released.length - 1));
    // 2000 draws: the sample sd is within 10 % of 1.5 and the mean within 0.2 of 0.5 far beyond 5 standard errors.
    expect(Math.abs(sd - 1.5) / 1.5).toBeLessThan(0.1);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.2);
    // Sampling all 4 of 4 connected agents: q = 1, the unsampled Gaussian.
    expect(dp.epsilon).toBeCloseTo(epsilonFor(1, 3, 2000, 1e-5), 10);
  });

  it('derives σ from a target (ε, δ) over the planned rounds and fleet', () => {
    const inner = new MezoStrategy({ agentsPerRound: 10 });
    const dp = new CentralDpStrategy(inner, { clip: 1, epsilon: 3, delta: 1e-5, rounds: 300, fleetSize: 100 });
    expect(epsilonFor(0.1, dp.noiseMultiplier, 300, 1e-5)).toBeLessThanOrEqual(3);
    expect(epsilonFor(0.1, dp.noiseMultiplier * 0.99, 300, 1e-5)).toBeGreaterThan(3);
  });

  it('refuses aggregations and seed modes the noise does not cover, naming the option', () => {
    const make = (strategy: ConstructorParameters<typeof MezoStrategy>[0], dp: ConstructorParameters<typeof CentralDpStrategy>[1] = { clip: 1, noiseMultiplier: 1 }) =>
      () => new CentralDpStrategy(new MezoStrategy(strategy), dp);
    expect(make({ aggregation: 'median' })).toThrow(/aggregation/);
    expect(make({ aggregation: 'trimmed-mean' })).toThrow(PrivacyConfigError);
    expect(make({ seedMode: 'pool' })).toThrow(/seedMode/);
    expect(make({ clip: 1 })).toThrow(/clip/);
    expect(make({}, { clip: 1 } as never)).toThrow(/noiseMultiplier/);
    expect(make({}, { clip: 1, epsilon: 1 })).toThrow(/fleetSize/);
    expect(make({}, { clip: -1, noiseMultiplier: 1 })).toThrow(/clip/);
  });
});
