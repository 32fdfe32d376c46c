/**
 * A federated job over NATS with the update log as a JetStream stream: a Coordinator and real Agents (some on
 * their own connections, some sharing one), rounds complete, a late joiner catches up from the stream, and every
 * replica equals base + replay of the stream, bit for bit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { Coordinator } from '../../coordinator/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { openJetStreamLog, replay } from '../../shared/log/index.js';
import { slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { NatsTransport, type Listener, type Transport } from '../../shared/transport/index.js';
import { resolveAgentConfig, runAgent } from '../../cli/agent-command.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, paddingOf, until, type Fixture } from './fleet-fixture.js';

const ROUNDS = 10;
const JOB = 'nats-fleet';

describe.skipIf(!natsServerPath())(`federated rounds over NATS with a JetStream log (${noise.kind} noise)`, () => {
  let server: NatsServer;
  let f: Fixture;
  let coordinatorNc: NatsConnection;
  let sharedNc: NatsConnection;
  let coordinator: Coordinator;
  let listener: Listener | undefined;
  const agents: Agent[] = [];
  const runs: Array<Promise<void>> = [];

  /** Keeps the listener the coordinator opens, for its traffic counts. */
  const recording = (inner: Transport): Transport => ({
    listen: async (handler) => (listener = await inner.listen(handler)),
    connect: (credentials) => inner.connect(credentials),
  });

  beforeAll(async () => {
    server = await startNatsServer();
    f = await fixture();
    coordinatorNc = await connect({ servers: server.url });
    sharedNc = await connect({ servers: server.url });
    const log = await openJetStreamLog({ connection: coordinatorNc, header: logHeader(f.prepared, JOB) });
    coordinator = new Coordinator({
      log,
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport: recording(new NatsTransport({ jobId: JOB, connection: coordinatorNc })),
      options: {
        jobId: JOB,
        rounds: ROUNDS,
        // Every round closes at quorum (all four answer); a deadline would only fail attempts on a loaded machine.
        deadlineMs: 600_000,
        // Agents evaluate on the test's own event loop, and pings pass through a nats-server that competes for the
        // same cores: an agent gives up on a session after 5 silent periods, so leave a loaded machine 10 s.
        heartbeatMs: 2000,
        batchSize: 64,
        strategy: { agentsPerRound: 4, seedMode: 'distinct', seedsPerAgent: 1, schedule: { lr: 4e-3 }, seed: 11 },
      },
    });
    await coordinator.listen();
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs.map((r) => r.catch(() => undefined)));
    await coordinator?.close();
    await sharedNc?.close();
    await coordinatorNc?.close();
    await server?.stop(true);
  });

  it('completes rounds with four agents (two on their own connections, two sharing one)', async () => {
    const own = (i: number) => makeAgent(f, new NatsTransport({ jobId: JOB, servers: server.url }), i);
    const shared = new NatsTransport({ jobId: JOB, connection: sharedNc });
    agents.push(own(0), own(1), makeAgent(f, shared, 2), makeAgent(f, shared, 3));
    runs.push(...agents.map((a) => a.run()));
    const report = await coordinator.run();
    expect(report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0, stopped: false });
    expect(coordinator.log.entries().map((e) => e.round)).toEqual(Array.from({ length: ROUNDS }, (_, r) => r));

    await until(() => agents.every((a) => a.state.version === ROUNDS), 10_000, 'agents to apply the last update');
    const sha = coordinator.weightsSha256();
    for (const agent of agents) {
      expect(agent.state.headHash).toBe(coordinator.log.headHash);
      expect(await agent.backend!.sha256()).toBe(sha);
    }
    for (const status of coordinator.agentStatuses()) {
      expect(status.stats).toMatchObject({ tasks: ROUNDS, rejected: 0, dropped: 0 });
      expect(status.stats.accepted + status.stats.late).toBe(ROUNDS);
    }
  });

  it('lets a late joiner catch up from the stream to the coordinator\'s weights hash', async () => {
    const late = makeAgent(f, new NatsTransport({ jobId: JOB, servers: server.url, readLogFromStream: true }), 4);
    agents.push(late);
    runs.push(late.run());
    await until(() => late.state.version === ROUNDS, 10_000, 'the late joiner to catch up');
    expect(late.state.lastCatchUp).toMatchObject({ path: 'log', from: 0, to: ROUNDS });
    expect(late.state.headHash).toBe(coordinator.log.headHash);
    expect(await late.backend!.sha256()).toBe(coordinator.weightsSha256());
    expect(coordinator.weightsSha256()).not.toBe(slabSha256(f.prepared.slab));
    // The entries came from the stream, not through the coordinator: it sent this agent only its join replies.
    const traffic = listener!.traffic();
    expect(traffic.get('agent-4')!.bytesDown).toBeLessThan(late.state.lastCatchUp!.logBytes);
    expect(traffic.get('agent-0')!.bytesDown).toBeGreaterThan(traffic.get('agent-4')!.bytesDown);
    expect(traffic.get('agent-0')!.bytesUp).toBeGreaterThan(0);
    await until(() => coordinator.agentStatus('agent-4')?.version === ROUNDS, 5000, 'a heartbeat at the head');
    expect(coordinator.agentStatuses().every((s) => s.stats.divergent === 0)).toBe(true);
  });

  it('serves `mezo agent --transport nats` (the CLI path) up to the head', async () => {
    // The job has ended: --keep-waiting keeps the agent connected (heartbeating) instead of leaving at once.
    const config = resolveAgentConfig({ transport: 'nats', natsUrl: server.url, jobId: JOB, natsReadLog: true, agentId: 'cli-agent', agentIndex: 5, numAgents: 6, worker: false, keepWaiting: true }, {});
    expect(config.nats).toMatchObject({ url: server.url, subjectPrefix: 'mezo' });
    // A private event name stands in for the signal, so the test process's own signal handling is untouched.
    const stop = 'mezo-test-stop-agent' as NodeJS.Signals;
    const running = runAgent(config, [stop]);
    try {
      await until(() => coordinator.agentStatus('cli-agent')?.version === ROUNDS, 15_000, 'the CLI agent at the head');
      expect(coordinator.agentStatus('cli-agent')!.weightsSha256).toBe(coordinator.weightsSha256());
    } finally {
      process.emit(stop as never);
      await running;
    }
  });

  it('holds in the stream exactly what every in-sync agent holds: base + replay', async () => {
    const reader = await connect({ servers: server.url });
    try {
      const stream = await openJetStreamLog({ connection: reader, header: logHeader(f.prepared, JOB) });
      expect(stream.entries()).toEqual(coordinator.log.entries());
      const slab = f.prepared.slab.slice();
      replay(noise, slab, stream.entries(), stream.distribution, { decayRanges: stream.header.decayRanges, padding: paddingOf(f.prepared) });
      const expected = slabSha256(slab);
      expect(coordinator.weightsSha256()).toBe(expected);
      for (const agent of agents.filter((a) => a.state.version === stream.version)) expect(await agent.backend!.sha256()).toBe(expected);
      await stream.close();
    } finally {
      await reader.close();
    }
  });
});
