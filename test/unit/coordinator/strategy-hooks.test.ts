import { describe, expect, it, vi } from 'vitest';
import {
  CentralDpStrategy,
  Coordinator,
  MezoStrategy,
  type AgentResult,
  type AggregatedUpdate,
  type RoundContext,
  type RoundFailure,
  type RoundReport,
  type Strategy,
} from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { epsilonFor } from '../../../shared/privacy/rdp-accountant.js';
import { InMemoryTransport, type CoordinatorMessage, type Task } from '../../../shared/transport/index.js';
import { joinScriptedAgent } from '../../helpers/scripted-agent.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);

type Behaviour = 'answer' | 'silent' | 'decline' | 'drop' | ((task: Task, answer: () => void) => void);

/** A scripted agent: on a task it answers consistently, stays silent, declines, or ends its session. */
async function scripted(transport: InMemoryTransport, agentId: string, behaviour: Behaviour = 'answer') {
  const received: CoordinatorMessage[] = [];
  const onMessage = (m: CoordinatorMessage): void => void received.push(m);
  const { client } = await joinScriptedAgent(transport, { agentId, baseSha256, onMessage }, (task, session) => {
    const answer = (): void => {
      const lossPlus = task.seeds.map(() => 2);
      const lossMinus = task.seeds.map(() => 1);
      const g = task.seeds.map(() => 1 / (2 * task.epsilon));
      session.send({ kind: 'result', result: { round: task.round, attempt: task.attempt, seeds: task.seeds, g, lossPlus, lossMinus, sampleCount: 1 } });
    };
    if (behaviour === 'answer') answer();
    else if (behaviour === 'decline') session.send({ kind: 'decline', decline: { round: task.round, attempt: task.attempt, reason: 'memory' } });
    else if (behaviour === 'drop') session.end();
    else if (typeof behaviour === 'function') behaviour(task, answer);
  });
  return { client, received };
}

/** A strategy that delegates to a MezoStrategy and records what the round loop hands it. */
class Recording implements Strategy {
  readonly inner: MezoStrategy;
  readonly calls: Array<{ context: RoundContext; results: string[]; failures: RoundFailure[] }> = [];
  readonly asked: RoundContext[] = [];
  constructor(
    agentsPerRound: number,
    private readonly extra: {
      metrics?: (results: readonly AgentResult[], failures: readonly RoundFailure[]) => Record<string, number>;
      endBefore?: number;
    } = {},
  ) {
    this.inner = new MezoStrategy({ agentsPerRound, seedMode: 'shared', seedsPerAgent: 1, schedule: { kind: 'constant', lr: 0.01 } });
  }
  get agentsPerRound(): number {
    return this.inner.agentsPerRound;
  }
  configureRound(context: RoundContext, agents: Parameters<Strategy['configureRound']>[1]) {
    return this.inner.configureRound(context, agents);
  }
  aggregate(context: RoundContext, results: readonly AgentResult[], failures: readonly RoundFailure[]): AggregatedUpdate | null {
    this.calls.push({ context, results: results.map((r) => r.agentId).sort(), failures: [...failures].sort((a, b) => a.agentId.localeCompare(b.agentId)) });
    const update = this.inner.aggregate(context, results);
    if (!update || !this.extra.metrics) return update;
    return { ...update, metrics: this.extra.metrics(results, failures) };
  }
  shouldEndJob(next: RoundContext): boolean {
    this.asked.push(next);
    return this.extra.endBefore !== undefined && next.round >= this.extra.endBefore;
  }
}

function coordinator(strategy: Strategy, options: Record<string, unknown>, onRound?: (r: RoundReport) => void) {
  const transport = new InMemoryTransport();
  const log = UpdateLog.inMemory({ jobId: 'hooks', baseSha256, distribution: 'gaussian' });
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, strategy, options: { jobId: 'hooks', heartbeatMs: 50, ...options }, ...(onRound ? { onRound } : {}) });
  return { c, transport, log };
}

describe('Strategy hooks', () => {
  it("hands aggregate the attempt's failures by reason, and carries its metrics to the round's report", async () => {
    const strategy = new Recording(5, { metrics: (results, failures) => ({ answered: results.length, failed: failures.length }) });
    const reports: RoundReport[] = [];
    // A deadline of an hour: the attempt closes at its quorum (2 of 5), never by time.
    const { c, transport } = coordinator(strategy, { rounds: 1, quorum: 2, deadlineMs: 3_600_000 }, (r) => reports.push(r));
    await c.listen();
    await scripted(transport, 'a');
    // b answers only once the decline and the dropped session have reached the coordinator, so the attempt is
    // still open for both when they happen.
    await scripted(transport, 'b', (_task, answer) => {
      void vi
        .waitFor(() => {
          expect(c.agentStatus('d')!.stats.declined).toBe(1);
          expect(c.agentStatus('x')!.connected).toBe(false);
        }, { timeout: 30_000, interval: 5 })
        .then(answer);
    });
    await scripted(transport, 'd', 'decline');
    await scripted(transport, 'x', 'drop');
    await scripted(transport, 's', 'silent');
    await vi.waitFor(() => expect(c.connectedAgents()).toHaveLength(5), { timeout: 30_000, interval: 5 });
    expect(await c.run()).toMatchObject({ roundsRun: 1, version: 1 });
    expect(strategy.calls).toHaveLength(1);
    expect(strategy.calls[0]!.results).toEqual(['a', 'b']);
    expect(strategy.calls[0]!.failures).toEqual([
      { agentId: 'd', reason: 'declined' },
      { agentId: 's', reason: 'unanswered' },
      { agentId: 'x', reason: 'dropped' },
    ]);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.metrics).toEqual({ answered: 2, failed: 3 });
    await c.close();
  });

  it('leaves RoundReport.metrics out when the strategy gives none', async () => {
    const strategy = new Recording(1);
    const reports: RoundReport[] = [];
    const { c, transport } = coordinator(strategy, { rounds: 2 }, (r) => reports.push(r));
    await c.listen();
    await scripted(transport, 'a');
    expect(await c.run()).toMatchObject({ roundsRun: 2 });
    expect(strategy.calls.map((call) => call.failures)).toEqual([[], []]);
    expect(reports.map((r) => 'metrics' in r)).toEqual([false, false]);
    await c.close();
  });

  it('refuses metrics that are not finite numbers, naming the metric, before anything is appended', async () => {
    const strategy = new Recording(1, { metrics: () => ({ ok: 1, loss: Number.NaN }) });
    const { c, transport, log } = coordinator(strategy, { rounds: 2 });
    await c.listen();
    await scripted(transport, 'a');
    await expect(c.run()).rejects.toThrow(/strategy\.aggregate: metrics\.loss must be a finite number, got NaN/);
    expect(log.version).toBe(0);
    await c.close();
  });

  it('ends the job cleanly before the round the strategy declines to run, and tells the agents', async () => {
    const strategy = new Recording(1, { endBefore: 2 });
    const { c, transport, log } = coordinator(strategy, { rounds: 5 });
    await c.listen();
    const agent = await scripted(transport, 'a');
    expect(await c.run()).toMatchObject({ roundsRun: 2, version: 2, stopped: true, failedAttempts: 0 });
    expect(log.entries().map((e) => e.round)).toEqual([0, 1]);
    // Asked before each attempt, with the version the attempt would evaluate at.
    expect(strategy.asked).toEqual([
      { round: 0, attempt: 0, version: 0 },
      { round: 1, attempt: 0, version: 1 },
      { round: 2, attempt: 0, version: 2 },
    ]);
    expect(c.jobEnd).toMatchObject({ reason: 'stopped', version: 2 });
    await vi.waitFor(() => expect(agent.received.some((m) => m.kind === 'jobEnd')).toBe(true), { timeout: 30_000, interval: 5 });
    const end = agent.received.find((m) => m.kind === 'jobEnd');
    expect(end).toMatchObject({ jobEnd: { reason: 'stopped', version: 2, headHash: log.headHash } });
    await c.close();
  });

  it('lets central DP end the job at its budget by itself, without a round listener', async () => {
    const sigma = 1;
    const delta = 1e-5;
    const q = 1 / 2; // 1 agent asked per round out of 2 connected
    // A budget between the ε of 3 and of 4 rounds: exactly 3 rounds may be released.
    const budget = (epsilonFor(q, sigma, 3, delta) + epsilonFor(q, sigma, 4, delta)) / 2;
    const inner = new MezoStrategy({ agentsPerRound: 1, seedMode: 'shared', seedsPerAgent: 1, schedule: { kind: 'constant', lr: 0.01 } });
    const dp = new CentralDpStrategy(inner, { clip: 1, noiseMultiplier: sigma, epsilon: budget, delta });
    const { c, transport, log } = coordinator(dp, { rounds: 20, strategy: { agentsPerRound: 1 } });
    await c.listen();
    await scripted(transport, 'a');
    await scripted(transport, 'b');
    await vi.waitFor(() => expect(c.connectedAgents()).toHaveLength(2), { timeout: 30_000, interval: 5 });
    expect(await c.run()).toMatchObject({ roundsRun: 3, version: 3, stopped: true, failedAttempts: 0 });
    expect(log.version).toBe(3);
    expect(dp.roundsReleased).toBe(3);
    expect(dp.epsilon).toBeLessThanOrEqual(budget);
    expect(c.jobEnd).toMatchObject({ reason: 'stopped', version: 3 });
    await c.close();
  });
});
