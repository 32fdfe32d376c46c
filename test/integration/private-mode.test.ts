/**
 * Private mode (record-level DP) end to end on every transport: real agents on the default model answer with
 * the noised g alone, and every Result the coordinator decodes carries no losses and the batch size as its
 * sample count. A coordinator refuses a result that breaks its mode: losses sent in a private job, or missing
 * in an ordinary one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../edge-agent/agent.js';
import type { Coordinator } from '../../coordinator/index.js';
import { noise } from '../../shared/noise/index.js';
import {
  GrpcTransport,
  InMemoryTransport,
  NatsTransport,
  type AgentMessage,
  type CoordinatorHandler,
  type Result,
  type ServerSession,
  type Task,
  type Transport,
} from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { Agent as FleetAgent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { fixture, makeAgent, startCoordinator, until, type Fixture } from './fleet-fixture.js';

const ROUNDS = 3;
const BATCH = 32;
const SEEDS = 2;
const recordDp = { clip: 64, noiseMultiplier: 1, private: true };

/** The coordinator's transport, recording every agent message the coordinator's handler receives (decoded and validated). */
function tapped(inner: Transport, heard: AgentMessage[]): Transport {
  const tapSession = (session: ServerSession): ServerSession => ({
    info: session.info,
    send: (message) => session.send(message),
    end: (error) => session.end(error),
    listen: (listener) =>
      session.listen({
        message: (message) => {
          heard.push(message);
          listener.message(message);
        },
        invalid: (error) => listener.invalid(error),
        closed: (error) => listener.closed(error),
      }),
  });
  return {
    listen: (handler: CoordinatorHandler) => {
      const wrapped = Object.create(handler) as CoordinatorHandler;
      wrapped.session = (session) => handler.session(tapSession(session));
      return inner.listen(wrapped);
    },
    connect: (credentials) => inner.connect(credentials),
  };
}

const results = (heard: readonly AgentMessage[]): Result[] => heard.flatMap((m) => (m.kind === 'result' ? [m.result] : []));

const jobOptions = (privateMode: boolean) => ({
  rounds: ROUNDS,
  // Every round closes when all asked agents answer; a deadline would only fail attempts on a loaded machine.
  deadlineMs: 600_000,
  heartbeatMs: 2000,
  batchSize: BATCH,
  strategy: { agentsPerRound: 3, seedMode: 'distinct' as const, seedsPerAgent: SEEDS, schedule: { lr: 1e-3 }, seed: 5 },
  recordDp: { ...recordDp, private: privateMode },
});

interface Link {
  coordinatorSide: Transport;
  agentSide: () => Transport;
  close(): Promise<void>;
}

const links: Record<'memory' | 'grpc' | 'nats', { skip: boolean; open: () => Promise<Link> }> = {
  memory: {
    skip: false,
    open: async () => {
      const shared = new InMemoryTransport();
      return { coordinatorSide: shared, agentSide: () => shared, close: async () => {} };
    },
  },
  grpc: {
    skip: false,
    open: async () => {
      let address = '';
      const server = new GrpcTransport({ address: '127.0.0.1:0' });
      const side: Transport = { listen: async (h) => { const l = await server.listen(h); address = l.address; return l; }, connect: (c) => server.connect(c) };
      return { coordinatorSide: side, agentSide: () => new GrpcTransport({ address }), close: async () => {} };
    },
  },
  nats: {
    skip: !natsServerPath(),
    open: async () => {
      const server: NatsServer = await startNatsServer();
      return {
        coordinatorSide: new NatsTransport({ jobId: 'fleet-test', servers: server.url }),
        agentSide: () => new NatsTransport({ jobId: 'fleet-test', servers: server.url }),
        close: () => server.stop(true),
      };
    },
  },
};

describe.each(Object.keys(links) as Array<keyof typeof links>)(`private mode over %s (${noise.kind} noise)`, (name) => {
  const link = links[name];
  let f: Fixture;
  let opened: Link;
  let coordinator: Coordinator;
  const heard: AgentMessage[] = [];
  let agents: Agent[] = [];
  let runs: Array<Promise<void>> = [];

  beforeAll(async () => {
    if (link.skip) return;
    f = await fixture();
    opened = await link.open();
    coordinator = await startCoordinator(f, tapped(opened.coordinatorSide, heard), jobOptions(true));
  });

  afterAll(async () => {
    if (link.skip) return;
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs.map((r) => r.catch(() => undefined)));
    await coordinator?.close();
    await opened?.close();
  });

  it.skipIf(link.skip)('agents release only the noised g: no losses reach the coordinator, sample counts are the batch size', async () => {
    agents = [0, 1, 2].map((i) => makeAgent(f, opened.agentSide(), i));
    runs = agents.map((a) => a.run());
    const report = await coordinator.run();
    expect(report).toMatchObject({ roundsRun: ROUNDS, failedAttempts: 0 });
    const got = results(heard);
    expect(got.length).toBe(ROUNDS * 3);
    for (const r of got) {
      expect(r.lossPlus).toBeUndefined();
      expect(r.lossMinus).toBeUndefined();
      expect('lossPlus' in r || 'lossMinus' in r).toBe(false);
      expect(r.sampleCount).toBe(BATCH);
      expect(r.g).toHaveLength(SEEDS);
      // The coordinator's range check: C/√k plus ten noise deviations σC/B.
      for (const g of r.g) expect(Math.abs(g)).toBeLessThanOrEqual(recordDp.clip / Math.sqrt(SEEDS) + (10 * recordDp.clip) / BATCH);
    }
    for (const status of coordinator.agentStatuses()) expect(status.stats.rejected).toBe(0);
    expect(coordinator.log.entries()).toHaveLength(ROUNDS);
  });
});

/** A hand-written agent on the in-memory transport that answers its first task with `answer(task)`. */
async function answerOnce(transport: Transport, f: Fixture, answer: (task: Task) => Result): Promise<void> {
  const client = transport.connect({ agentId: 'hand-agent', token: '' });
  await client.join({ agentId: 'hand-agent', token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: '' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 });
  const session = client.session({
    message: (m) => {
      if (m.kind === 'task') session.send({ kind: 'result', result: answer(m.task) });
    },
    invalid: () => {},
    closed: () => {},
  });
}

describe('a coordinator refuses a result that breaks its mode', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  it.each([
    { privateMode: true, losses: true, reason: 'losses-in-private-mode' },
    { privateMode: false, losses: false, reason: 'missing-losses' },
  ])('private $privateMode, losses sent $losses: rejected as $reason', async ({ privateMode, losses, reason }) => {
    const transport = new InMemoryTransport();
    const base = jobOptions(privateMode);
    const coordinator = await startCoordinator(f, transport, { ...base, rounds: 1, maxAttempts: 1, strategy: { ...base.strategy, agentsPerRound: 1 } });
    try {
      const run = coordinator.run().catch((err: Error) => err);
      await answerOnce(transport, f, (task) => ({
        round: task.round,
        attempt: task.attempt,
        seeds: task.seeds,
        g: task.seeds.map(() => 0.5),
        ...(losses ? { lossPlus: task.seeds.map(() => 2.3), lossMinus: task.seeds.map(() => 2.3) } : {}),
        sampleCount: task.batchSize,
      }));
      await until(() => (coordinator.agentStatus('hand-agent')?.stats.rejected ?? 0) > 0, 20_000, 'the rejection');
      expect(coordinator.agentStatus('hand-agent')!.stats.rejections).toEqual({ [reason]: 1 });
      coordinator.stop();
      await run;
      expect(coordinator.log.entries()).toHaveLength(0);
    } finally {
      await coordinator.close();
    }
  });
});

describe("an agent's privacy floor", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  const floorAgent = (transport: Transport) =>
    new FleetAgent({
      agentId: 'floor-agent',
      transport,
      prepared: f.prepared,
      createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
      data: f.task.agents[0]!,
      reconnect: { initialMs: 20, maxMs: 200 },
      privacyFloor: { minNoiseMultiplier: 1, maxClip: 64, requirePrivate: true },
    });

  it.each([
    { what: 'a weaker noise multiplier', recordDp: { clip: 64, noiseMultiplier: 0.5, private: true }, declined: true },
    { what: 'no private mode', recordDp: { clip: 64, noiseMultiplier: 1, private: false }, declined: true },
    { what: 'no record-level DP', recordDp: undefined, declined: true },
    { what: 'settings at the floor', recordDp: { clip: 64, noiseMultiplier: 1, private: true }, declined: false },
  ])('declines a task with $what (declined: $declined)', async ({ recordDp: dp, declined }) => {
    const transport = new InMemoryTransport();
    const base = jobOptions(true);
    const { recordDp: _unused, ...rest } = base;
    const coordinator = await startCoordinator(f, transport, { ...rest, ...(dp ? { recordDp: dp } : {}), rounds: 1, maxAttempts: 1, strategy: { ...base.strategy, agentsPerRound: 1 } });
    const agent = floorAgent(transport);
    const running = agent.run().catch(() => undefined);
    try {
      const outcome = await coordinator.run().then(
        () => 'committed',
        (err: Error) => err.name,
      );
      const stats = coordinator.agentStatus('floor-agent')!.stats;
      if (declined) {
        expect(outcome).toBe('RoundFailedError');
        expect(stats.declined).toBe(1);
        expect(stats.accepted).toBe(0);
        expect(coordinator.log.entries()).toHaveLength(0);
      } else {
        expect(outcome).toBe('committed');
        expect(stats).toMatchObject({ declined: 0, accepted: 1, rejected: 0 });
      }
    } finally {
      await agent.close();
      await running;
      await coordinator.close();
    }
  });
});
