import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcTransport, type ClientSession, type CoordinatorMessage, type Task } from '../../shared/transport/index.js';
import type { MezoBackend } from '../../edge-agent/mezo-backend.js';
import type { Agent } from '../../edge-agent/agent.js';
import type { Coordinator } from '../../coordinator/index.js';
import { fixture, makeAgent, startCoordinator, until, type Fixture } from './fleet-fixture.js';
import { delegatingBackend } from '../helpers/delegating-backend.js';

const ROUNDS = 8;
const EPSILON = 1e-3;

/** A backend whose evaluations take `delayMs` longer: an agent that stalls past the round. */
function stalling(delayMs: number) {
  return (inner: MezoBackend): MezoBackend =>
    delegatingBackend(inner, {
      evaluate: async (seeds, epsilon, batch, fuse) => {
        const result = await inner.evaluate(seeds, epsilon, batch, fuse);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        return result;
      },
    });
}

/** A hand-written client that joins properly, then reacts to tasks as `onTask` says. */
async function rogue(
  f: Fixture,
  address: string,
  agentId: string,
  onTask: (task: Task, count: number, session: ClientSession, close: () => void) => void,
): Promise<() => void> {
  const client = new GrpcTransport({ address }).connect({ agentId, token: '' });
  const accepted = await client.join({
    agentId,
    token: '',
    capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' },
    baseSha256: f.prepared.manifest.slabSha256,
    versionHeld: 0,
  });
  expect(accepted.currentVersion).toBe(0);
  let count = 0;
  const session: ClientSession = client.session({
    message: (m: CoordinatorMessage) => {
      if (m.kind === 'ping') session.send({ kind: 'pong', nonce: m.nonce });
      if (m.kind === 'task') onTask(m.task, ++count, session, () => client.close());
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return () => client.close();
}

const consistent = (task: Task, round = task.round, seeds = task.seeds) => ({
  round,
  attempt: task.attempt,
  seeds,
  lossPlus: seeds.map(() => 1.5),
  lossMinus: seeds.map(() => 1.5),
  g: seeds.map(() => 0),
  sampleCount: task.batchSize,
});

describe('faulty agents do not stop rounds and are counted', () => {
  let f: Fixture;
  let coordinator: Coordinator;
  const agents: Agent[] = [];
  const runs: Array<Promise<void>> = [];
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    f = await fixture();
    coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), {
      rounds: ROUNDS,
      quorum: 3,
      // The three honest agents close every round at quorum; a deadline would only fail attempts under load.
      deadlineMs: 600_000,
      heartbeatMs: 100,
      epsilon: EPSILON,
      batchSize: 32,
      strategy: { agentsPerRound: 6, seedsPerAgent: 1, schedule: { lr: 1e-3 } },
    });
  });

  afterAll(async () => {
    closers.forEach((close) => close());
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await coordinator.close();
  });

  it('drops late results, rejects garbage by reason, counts a dropped agent, and keeps committing rounds', async () => {
    const address = coordinator.address!;
    // Three honest agents and one that stalls (answers 1.5 s late, after the honest quorum closed the round).
    for (const i of [0, 1, 2]) agents.push(makeAgent(f, new GrpcTransport({ address }), i));
    agents.push(makeAgent(f, new GrpcTransport({ address }), 3, stalling(1500)));
    agents.forEach((a) => runs.push(a.run()));
    // One that drops its connection when its third task arrives.
    closers.push(await rogue(f, address, 'dropper', (_task, count, _session, close) => count === 3 && close()));
    // One that sends garbage: NaN scalars, a wrong round, a duplicate, the wrong seeds, a bad sample count.
    closers.push(
      await rogue(f, address, 'garbage', (task, count, session) => {
        const valid = consistent(task);
        switch (count) {
          case 1:
            session.send({ kind: 'result', result: { ...valid, g: [Number.NaN] } });
            break;
          case 2:
            session.send({ kind: 'result', result: consistent(task, task.round + 100) });
            break;
          case 3:
            session.send({ kind: 'result', result: valid });
            session.send({ kind: 'result', result: valid });
            break;
          case 4:
            session.send({ kind: 'result', result: consistent(task, task.round, [task.seeds[0]! + 1n]) });
            break;
          case 5:
            session.send({ kind: 'result', result: { ...valid, sampleCount: 10_000 } });
            break;
          case 6:
            session.send({ kind: 'result', result: { ...valid, g: [123] } });
            break;
        }
      }),
    );
    await until(() => coordinator.connectedAgents().length === 6, 30_000, 'six agents');

    const report = await coordinator.run();
    expect(report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS });

    const garbage = coordinator.agentStatus('garbage')!.stats;
    expect(garbage.rejections).toMatchObject({
      'invalid-message': 1,
      'wrong-round': 1,
      'wrong-seeds': 1,
      'bad-sample-count': 1,
      'inconsistent-g': 1,
    });
    // The duplicate is rejected when its first copy made it into the open round, else both came late.
    expect((garbage.rejections.duplicate ?? 0) + garbage.late).toBeGreaterThanOrEqual(1);

    const dropper = coordinator.agentStatus('dropper')!;
    expect(dropper.connected).toBe(false);
    expect(dropper.stats.tasks).toBe(3);

    await until(() => (coordinator.agentStatus('agent-3')?.stats.late ?? 0) >= 1, 30_000, 'a late result from the staller');
    const staller = coordinator.agentStatus('agent-3')!.stats;
    expect(staller.accepted).toBe(0);
    expect(staller.rejected).toBe(0);

    for (const id of ['agent-0', 'agent-1', 'agent-2']) {
      expect(coordinator.agentStatus(id)!.stats).toMatchObject({ tasks: ROUNDS, rejected: 0 });
    }
    // Honest replicas still follow the chain.
    await until(() => agents.slice(0, 3).every((a) => a.state.version === ROUNDS), 30_000, 'replicas at the head');
    for (const agent of agents.slice(0, 3)) expect(agent.state.headHash).toBe(coordinator.log.headHash);
  });
});
