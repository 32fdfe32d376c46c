/**
 * The update log belongs to the coordinator, whatever NATS lets through: a job over NATS with a signed
 * JetStream log, and publishes that are not the coordinator's — a forged update that hashes and chains
 * correctly, an unsigned one and garbage on the job's updates subject; garbage and a forged entry on its log
 * entry subject. Agents drop and count the bad updates and keep running, the coordinator keeps appending, a
 * restart with the garbage in the stream succeeds, and an agent pinned to another key refuses the job — as does
 * one that took the key from its first Join when the same job comes back under another key (in memory).
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { Coordinator } from '../../coordinator/index.js';
import { Agent, AgentStateError } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { encodeEntryPayload, LogSigner, openJetStreamLog, SIGNATURE_HEADER, UpdateLog, type LogEntry } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { encodeCoordinatorMessage, InMemoryTransport, jobSubjects, NatsTransport, protoDir } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, paddingOf, until, type Fixture } from './fleet-fixture.js';

const JOB = 'signed-job';
const subjects = jobSubjects(JOB);

/** A CoordinatorMessage in its protobuf bytes, as the coordinator publishes it on the updates subject. */
function updateBytes(update: LogEntry): Uint8Array {
  const type = protobuf.loadSync(join(protoDir(), 'mezo', 'v1', 'agent.proto')).lookupType('mezo.v1.CoordinatorMessage');
  return type.encode(type.fromObject(encodeCoordinatorMessage({ kind: 'update', update }))).finish();
}

describe.skipIf(!natsServerPath())(`a signed update log over NATS against forged and garbage publishes (${noise.kind} noise)`, () => {
  let server: NatsServer;
  let f: Fixture;
  let coordinatorNc: NatsConnection;
  let attacker: NatsConnection;
  let coordinator: Coordinator;
  const signer = LogSigner.generate();
  const agents: Agent[] = [];
  const runs: Array<Promise<unknown>> = [];

  const startCoordinator = async (rounds: number): Promise<Coordinator> => {
    const log = await openJetStreamLog({ connection: coordinatorNc, header: logHeader(f.prepared, JOB), signer });
    const c = new Coordinator({
      log,
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport: new NatsTransport({ jobId: JOB, connection: coordinatorNc }),
      options: {
        jobId: JOB,
        rounds,
        deadlineMs: 10_000,
        heartbeatMs: 250,
        batchSize: 64,
        strategy: { agentsPerRound: 2, seedMode: 'distinct', seedsPerAgent: 1, schedule: { lr: 4e-3 }, seed: 3 },
      },
    });
    await c.listen();
    return c;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    f = await fixture();
    coordinatorNc = await connect({ servers: server.url });
    attacker = await connect({ servers: server.url });
    coordinator = await startCoordinator(4);
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs.map((r) => r.catch(() => undefined)));
    await coordinator?.close();
    await attacker?.close();
    await coordinatorNc?.close();
    await server?.stop(true);
  });

  it('agents drop forged and garbage updates, keep running, and the coordinator keeps its log', async () => {
    // One agent pins the key from its enrolment and reads the stream itself; the other pins the first Join's key.
    const pinned = new Agent({
      agentId: 'agent-0',
      transport: new NatsTransport({ jobId: JOB, servers: server.url, readLogFromStream: true }),
      prepared: f.prepared,
      createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
      data: f.task.agents[0]!,
      dataSeed: 0,
      reconnect: { initialMs: 20, maxMs: 200 },
      logPublicKey: signer.publicKey,
    });
    agents.push(pinned, makeAgent(f, new NatsTransport({ jobId: JOB, servers: server.url }), 1));
    runs.push(...agents.map((a) => a.run()));
    expect(await coordinator.run()).toMatchObject({ roundsRun: 4, version: 4 });
    await until(() => agents.every((a) => a.state.version === 4), 15_000, 'agents at version 4');
    const head = coordinator.log.headHash;

    // A forger who saw every update builds entry 5: it hashes and chains, but its key is not the coordinator's.
    const forger = LogSigner.generate();
    const forged = UpdateLog.inMemory(logHeader(f.prepared, JOB), { signer: forger });
    for (const e of coordinator.log.entries()) await forged.append({ round: e.round, lr: e.lr, decay: e.decay, terms: e.terms });
    const fake = await forged.append({ round: 4, lr: 1, terms: [{ seed: 666n, coeff: 0.5 }] });
    expect(fake.prevHash).toBe(head);
    const { signature: _signature, ...unsignedFake } = fake;
    attacker.publish(subjects.updates, updateBytes(fake));
    attacker.publish(subjects.updates, updateBytes(unsignedFake));
    attacker.publish(subjects.updates, Buffer.alloc(64, 0x5a));
    // A forged far-ahead version must not send agents chasing it either.
    attacker.publish(subjects.updates, updateBytes({ ...fake, version: 1_000_000 }));
    // The log subject too: garbage, and the forged entry with its (foreign) signature.
    const js = attacker.jetstream();
    await js.publish(subjects.logEntry, Buffer.alloc(64, 0x33));
    const h = natsHeaders();
    h.set(SIGNATURE_HEADER, fake.signature!);
    const { hash, signature: _s, ...payloadFields } = fake;
    await js.publish(subjects.logEntry, Buffer.concat([encodeEntryPayload(payloadFields), Buffer.from(hash, 'hex')]), { headers: h });
    await attacker.flush();

    await until(() => agents.every((a) => a.state.updatesRejected === 3), 15_000, 'both agents to drop the three decodable forgeries');
    for (const agent of agents) {
      expect(agent.state.version).toBe(4);
      expect(agent.state.headHash).toBe(head);
      expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
    }

    // The coordinator goes on: a restart over the stream with the garbage in it, and more rounds.
    await coordinator.close();
    coordinator = await startCoordinator(7);
    expect(coordinator.log.version).toBe(4);
    expect(coordinator.log.headHash).toBe(head);
    expect(coordinator.log.ignoredRecords).toBe(2);
    expect(await coordinator.run()).toMatchObject({ roundsRun: 3, version: 7 });
    await until(() => agents.every((a) => a.state.version === 7), 15_000, 'agents at version 7');
    for (const agent of agents) {
      expect(agent.state.headHash).toBe(coordinator.log.headHash);
      expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
    }
    // Still running: neither agent's run() ended.
    const settled = await Promise.race([Promise.allSettled(runs).then(() => 'ended'), new Promise((r) => setImmediate(() => r('running')))]);
    expect(settled).toBe('running');
  });

  it('refuses the job when the coordinator presents another key than the pinned one', async () => {
    const agent = new Agent({
      agentId: 'agent-pinned-elsewhere',
      transport: new NatsTransport({ jobId: JOB, servers: server.url }),
      prepared: f.prepared,
      createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
      data: f.task.agents[2]!,
      reconnect: { initialMs: 20, maxMs: 200 },
      logPublicKey: LogSigner.generate().publicKey,
    });
    try {
      const error = await agent.run().then(() => undefined, (err: unknown) => err);
      expect(error).toBeInstanceOf(AgentStateError);
      expect((error as Error).message).toMatch(/presents the log key ed25519:[0-9a-f]{64}, not the pinned/);
    } finally {
      await agent.close();
    }
  });
});

describe('an agent that took the log key from its first Join', () => {
  it('refuses the same job when the coordinator comes back with another key', async () => {
    const f = await fixture();
    const transport = new InMemoryTransport();
    const options = {
      jobId: 'tofu',
      rounds: 1000,
      deadlineMs: 10_000,
      heartbeatMs: 250,
      batchSize: 32,
      strategy: { agentsPerRound: 1, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 },
    };
    const coordinatorWith = async (signer: LogSigner, history: readonly LogEntry[] = []): Promise<Coordinator> => {
      const log = UpdateLog.inMemory(logHeader(f.prepared, 'tofu'), { signer });
      for (const e of history) await log.append({ round: e.round, lr: e.lr, decay: e.decay, terms: e.terms });
      const c = new Coordinator({ log, baseSlab: f.prepared.slab, padding: paddingOf(f.prepared), engine: noise, transport, options });
      await c.listen();
      return c;
    };
    const first = await coordinatorWith(LogSigner.generate());
    const agent = makeAgent(f, transport, 0);
    const run = agent.run().then(() => undefined, (err: unknown) => err);
    try {
      // Stopped without ending the job (as a crash would), once the agent holds two signed entries.
      first.onRound((r) => r.version >= 2 && first.stop());
      await first.run();
      await until(() => agent.state.version === 2, 15_000, 'the agent at version 2');
      await first.close();
      // The same job and history, signed with another key: not the coordinator the agent knew.
      const second = await coordinatorWith(LogSigner.generate(), first.log.entries());
      try {
        const error = await run;
        expect(error).toBeInstanceOf(AgentStateError);
        expect((error as Error).message).toContain(`not the pinned ${first.log.publicKey}`);
        expect(agent.state.version).toBe(2);
      } finally {
        await second.close();
      }
    } finally {
      await agent.close();
    }
  });
});
