import { describe, expect, it } from 'vitest';
import { Coordinator, RoundFailedError, type RoundOptionsInput } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type ClientSession, type Task } from '../../../shared/transport/index.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);

function coordinator(options: RoundOptionsInput) {
  const transport = new InMemoryTransport();
  const log = UpdateLog.inMemory({ jobId: 'unit', baseSha256, distribution: 'gaussian' });
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId: 'unit', heartbeatMs: 50, ...options } });
  return { c, transport };
}

/** A scripted agent: answers each task consistently unless `silent`. */
async function scripted(transport: InMemoryTransport, agentId: string, silent = false, token = '') {
  const client = transport.connect({ agentId, token });
  await client.join({ agentId, token, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
  const tasks: Task[] = [];
  const session: ClientSession = client.session({
    message: (m) => {
      if (m.kind === 'ping') session.send({ kind: 'pong', nonce: m.nonce });
      if (m.kind !== 'task') return;
      tasks.push(m.task);
      if (silent) return;
      const lossPlus = m.task.seeds.map(() => 2);
      const lossMinus = m.task.seeds.map(() => 1);
      const g = m.task.seeds.map(() => 1 / (2 * m.task.epsilon));
      session.send({ kind: 'result', result: { round: m.task.round, attempt: m.task.attempt, seeds: m.task.seeds, g, lossPlus, lossMinus, sampleCount: 1 } });
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return { client, tasks };
}

describe('the round loop', () => {
  it('closes a round at quorum without waiting for a silent agent', async () => {
    // A deadline of an hour: a round that waited for the silent agent would time the test out.
    const { c, transport } = coordinator({ rounds: 3, quorum: 2, deadlineMs: 3_600_000, strategy: { agentsPerRound: 3 } });
    await c.listen();
    await scripted(transport, 'a');
    await scripted(transport, 'b');
    await scripted(transport, 'silent', true);
    expect(await c.run()).toMatchObject({ roundsRun: 3, version: 3, failedAttempts: 0 });
    expect(c.log.entries().every((e) => e.terms.length === 2)).toBe(true);
    await c.close();
  });

  it('does not count answers to its own tasks against an agent\'s message budget', async () => {
    // A budget of 3 messages (burst) refilled at 1/s, and 40 fast rounds: only unsolicited traffic may spend it.
    const { c, transport } = coordinator({ rounds: 40, strategy: { agentsPerRound: 1 }, rateLimit: { perSecond: 1, burst: 3 } });
    await c.listen();
    await scripted(transport, 'fast');
    expect(await c.run()).toMatchObject({ roundsRun: 40, failedAttempts: 0 });
    expect(c.agentStatus('fast')!.stats.rateLimited).toBe(0);
    await c.close();
  });

  it('lets an agent answer every ping for free, but charges pongs nobody asked for', async () => {
    const { c, transport } = coordinator({ rounds: 0, rateLimit: { perSecond: 1, burst: 3 } });
    await c.listen();
    const client = transport.connect({ agentId: 'p', token: '' });
    await client.join({ agentId: 'p', token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
    let pings = 0;
    let ended: unknown;
    const session: ClientSession = client.session({
      message: (m) => {
        if (m.kind !== 'ping') return;
        pings++;
        session.send({ kind: 'pong', nonce: m.nonce });
      },
      invalid: () => undefined,
      closed: (error) => (ended = error),
    });
    // Ten answered pings (heartbeat 50 ms) would exhaust a burst of 3 if pongs were charged.
    while (pings < 10) await new Promise((r) => setTimeout(r, 10));
    expect(c.agentStatus('p')!.stats.rateLimited).toBe(0);
    expect(ended).toBeUndefined();
    // A burst of pongs with a nonce the coordinator never sent is unsolicited traffic and spends the budget.
    for (let i = 0; i < 10; i++) session.send({ kind: 'pong', nonce: 1e9 + i });
    while (ended === undefined) await new Promise((r) => setTimeout(r, 10));
    expect(ended).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    expect(c.agentStatus('p')!.stats.rateLimited).toBeGreaterThan(0);
    await c.close();
  });

  it('retries a round without quorum at its deadline with fresh seeds, then fails instead of hanging', async () => {
    const { c, transport } = coordinator({ rounds: 1, deadlineMs: 80, maxAttempts: 3, strategy: { agentsPerRound: 2 } });
    await c.listen();
    await scripted(transport, 'a');
    const silent = await scripted(transport, 'silent', true);
    await expect(c.run()).rejects.toBeInstanceOf(RoundFailedError);
    expect(c.log.version).toBe(0);
    expect(silent.tasks.map((t) => t.attempt)).toEqual([0, 1, 2]);
    expect(new Set(silent.tasks.map((t) => t.seeds[0])).size).toBe(3);
    // The answering agent's results are discarded with their failed attempts, not rejected.
    expect(c.agentStatus('a')!.stats).toMatchObject({ tasks: 3, rejected: 0, accepted: 0 });
    expect(c.agentStatus('silent')!.stats).toMatchObject({ tasks: 3, rejected: 0, accepted: 0 });
    await c.close();
  });

  it('fails an attempt when too few agents connect in time', async () => {
    const { c } = coordinator({ rounds: 1, waitForAgentsMs: 30, maxAttempts: 2 });
    await c.listen();
    await expect(c.run()).rejects.toThrow(/no quorum after 2 attempts/);
    await c.close();
  });

  it('stop() abandons the open round: nothing is logged for it', async () => {
    const { c, transport } = coordinator({ rounds: 5, deadlineMs: 60_000, strategy: { agentsPerRound: 1 } });
    await c.listen();
    const silent = await scripted(transport, 'silent', true);
    const running = c.run();
    while (silent.tasks.length === 0) await new Promise((r) => setTimeout(r, 5));
    c.stop();
    expect(await running).toMatchObject({ roundsRun: 0, version: 0, stopped: true });
    await c.close();
  });

  it('refuses bad tokens, foreign bases, sessions before join, and out-of-range fetches with status codes', async () => {
    const { c, transport } = coordinator({ rounds: 0, token: 'secret' });
    await c.listen();
    const join = (agentId: string, token: string, sha = baseSha256, versionHeld = 0) =>
      transport.connect({ agentId, token }).join({ agentId, token, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: sha, versionHeld });
    await expect(join('a', 'wrong')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(join('a', 'secret', 'ee'.repeat(32))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('join.baseSha256') });
    await expect(join('a', 'secret', baseSha256, 3)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('join.versionHeld') });
    const refused = await new Promise((resolve) =>
      transport.connect({ agentId: 'stranger', token: 'secret' }).session({ message: () => undefined, invalid: () => undefined, closed: resolve }),
    );
    expect(refused).toMatchObject({ code: 'FAILED_PRECONDITION' });
    await expect(join('a', 'secret')).resolves.toMatchObject({ jobId: 'unit', currentVersion: 0 });
    await expect(transport.connect({ agentId: 'a', token: 'secret' }).fetchLog({ fromVersion: 1, toVersion: 0 })).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(transport.connect({ agentId: 'a', token: 'secret' }).fetchLog({ fromVersion: 0, toVersion: 0 })).resolves.toEqual({ entries: [], headVersion: 0 });
    await c.close();
  });
});
