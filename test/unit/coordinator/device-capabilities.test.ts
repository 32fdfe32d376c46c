import { describe, expect, it } from 'vitest';
import { Coordinator, MezoStrategy, RoundFailedError, type RoundOptionsInput } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, decodeAgentMessage, encodeAgentMessage, type Capabilities, type ClientSession, type DeclineReason, type Task } from '../../../shared/transport/index.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);

function coordinator(options: RoundOptionsInput) {
  const transport = new InMemoryTransport();
  const log = UpdateLog.inMemory({ jobId: 'unit', baseSha256, distribution: 'gaussian' });
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId: 'unit', heartbeatMs: 50, ...options } });
  return { c, transport };
}

/** A scripted agent over the in-memory transport: answers each task, or declines it with `decline`. */
async function scripted(transport: InMemoryTransport, agentId: string, capabilities: Partial<Capabilities>, decline?: DeclineReason) {
  const client = transport.connect({ agentId, token: '' });
  await client.join({ agentId, token: '', capabilities: { memoryBytes: 1 << 30, cores: 1, noiseImpl: 'js', ...capabilities }, baseSha256, versionHeld: 0 });
  const tasks: Task[] = [];
  const session: ClientSession = client.session({
    message: (m) => {
      if (m.kind === 'ping') session.send({ kind: 'pong', nonce: m.nonce });
      if (m.kind !== 'task') return;
      tasks.push(m.task);
      if (decline) {
        session.send({ kind: 'decline', decline: { round: m.task.round, attempt: m.task.attempt, reason: decline } });
        return;
      }
      const lossPlus = m.task.seeds.map(() => 2);
      const lossMinus = m.task.seeds.map(() => 1);
      const g = m.task.seeds.map(() => 1 / (2 * m.task.epsilon));
      session.send({ kind: 'result', result: { round: m.task.round, attempt: m.task.attempt, seeds: m.task.seeds, g, lossPlus, lossMinus, sampleCount: 1 } });
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return { client, tasks, session };
}

const view = (id: string, capabilities: Partial<Capabilities>) => ({ id, capabilities: { memoryBytes: 1 << 30, cores: 1, noiseImpl: 'js', ...capabilities } });

describe('device capabilities in sampling', () => {
  it('a Decline names its round, attempt and reason; an unset reason is refused, naming the field', () => {
    const decline = { kind: 'decline' as const, decline: { round: 7, attempt: 1, reason: 'busy' as const } };
    expect(decodeAgentMessage(encodeAgentMessage(decline))).toEqual(decline);
    expect(() => decodeAgentMessage({ decline: { round: '7', attempt: 1, reason: 'DECLINE_REASON_UNSPECIFIED' } })).toThrow(/^decline\.reason: must be BUSY, MEMORY or PRIVACY/);
    const beat = { kind: 'heartbeat' as const, heartbeat: { version: 3, weightsSha256: baseSha256, busy: true } };
    expect(decodeAgentMessage(encodeAgentMessage(beat))).toEqual(beat);
  });

  it('capability sampling skips busy agents and agents whose budget is below the task\'s need; uniform skips busy ones', () => {
    const agents = [
      view('busy', { busy: true, cores: 64 }),
      view('small-budget', { memoryBudgetBytes: 100 << 20 }), // a large device, but a small budget
      view('fits', { memoryBudgetBytes: 600 << 20 }),
      view('no-budget', { memoryBytes: 2 * 2 ** 30 }),
    ];
    const capability = new MezoStrategy({ sampling: 'capability', agentsPerRound: 4, minMemoryBytes: 512 << 20 });
    const uniform = new MezoStrategy({ sampling: 'uniform', agentsPerRound: 4 });
    for (let round = 0; round < 20; round++) {
      const context = { round, attempt: 0, version: 0 };
      expect(capability.sample(context, agents).map((a) => a.id).sort()).toEqual(['fits', 'no-budget']);
      expect(uniform.sample(context, agents).map((a) => a.id).sort()).toEqual(['fits', 'no-budget', 'small-budget']);
    }
  });

  it('capability sampling weighs agents by the threads they offer, not their cores', () => {
    const strategy = new MezoStrategy({ sampling: 'capability', agentsPerRound: 1 });
    const agents = [view('capped', { cores: 64, threads: 1 }), view('free', { cores: 8 })];
    let capped = 0;
    for (let round = 0; round < 400; round++) if (strategy.sample({ round, attempt: 0, version: 0 }, agents)[0]!.id === 'capped') capped++;
    // Weights 1 : 8, so about 44 of 400; by cores it would be about 356.
    expect(capped).toBeGreaterThan(10);
    expect(capped).toBeLessThan(100);
  });

  it('never sends a task to an agent that joined busy, and samples it again once a heartbeat says it is free', async () => {
    const { c, transport } = coordinator({ rounds: 4, strategy: { agentsPerRound: 1 } });
    await c.listen();
    const metrics = new CoordinatorMetrics(c);
    const busyGauge = async (): Promise<number> => (await metrics.registry.getSingleMetric('mezo_agents_busy')!.get()).values[0]!.value;
    const busy = await scripted(transport, 'busy', { busy: true });
    const free = await scripted(transport, 'free', {});
    expect(await busyGauge()).toBe(1);
    expect(await c.run()).toMatchObject({ roundsRun: 4, failedAttempts: 0 });
    expect(busy.tasks).toHaveLength(0);
    expect(free.tasks).toHaveLength(4);
    expect(c.agentStatus('busy')!.capabilities.busy).toBe(true);
    busy.session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: baseSha256, busy: false } });
    while (c.agentStatus('busy')!.capabilities.busy) await new Promise((r) => setTimeout(r, 5));
    expect(await busyGauge()).toBe(0);
    free.session.send({ kind: 'heartbeat', heartbeat: { version: 4, weightsSha256: '00'.repeat(32), busy: true } });
    while (!c.agentStatus('free')!.capabilities.busy) await new Promise((r) => setTimeout(r, 5));
    await c.close();
  });

  it('counts a declined task as a decline, not a fault, and does not wait for its deadline', async () => {
    // A deadline of an hour: a round that waited for the declined task would time the test out.
    const { c, transport } = coordinator({ rounds: 1, deadlineMs: 3_600_000, maxAttempts: 2, strategy: { agentsPerRound: 1 } });
    await c.listen();
    const metrics = new CoordinatorMetrics(c);
    const small = await scripted(transport, 'small', {}, 'memory');
    await expect(c.run()).rejects.toBeInstanceOf(RoundFailedError);
    expect((await metrics.registry.getSingleMetric('mezo_tasks_declined_total')!.get()).values[0]!.value).toBe(2);
    expect(small.tasks.map((t) => t.attempt)).toEqual([0, 1]);
    expect(c.agentStatus('small')!.stats).toMatchObject({ tasks: 2, declined: 2, rejected: 0, dropped: 0, late: 0, accepted: 0 });
    // A memory decline is about the task, not the device: the agent stays in the pool.
    expect(c.agentStatus('small')!.capabilities.busy).toBeFalsy();
    await c.close();
  });

  it('marks an agent that declines because it is busy as busy, and commits with the others', async () => {
    const { c, transport } = coordinator({ rounds: 3, quorum: 1, deadlineMs: 3_600_000, strategy: { agentsPerRound: 2 } });
    await c.listen();
    const paused = await scripted(transport, 'paused', {}, 'busy');
    const worker = await scripted(transport, 'worker', {});
    expect(await c.run()).toMatchObject({ roundsRun: 3 });
    // Asked at most once: after its decline it is busy and out of the pool.
    expect(paused.tasks.length).toBeLessThanOrEqual(1);
    expect(worker.tasks).toHaveLength(3);
    expect(c.agentStatus('paused')!.stats.rejected).toBe(0);
    await c.close();
  });
});
