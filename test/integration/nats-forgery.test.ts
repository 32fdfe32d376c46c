/**
 * Forged and garbage messages on a job's NATS subjects, on a server without per-agent permissions (anyone may
 * read and publish anywhere): an eavesdropper reads every task and uplink message and publishes forged results,
 * forged session ends, replays of the agents' own messages and random bytes on every session, uplink and
 * request subject of the job. With app tokens none of it is accepted: the rounds merge only the agents' own
 * scalars, and no agent is charged for the garbage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import type { Coordinator, RoundReport } from '../../coordinator/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { noise } from '../../shared/noise/index.js';
import {
  NatsTransport,
  decodeCoordinatorMessage,
  encodeAgentMessage,
  jobSubjects,
  loadProtocol,
  type Listener,
  type Transport,
} from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, startCoordinator, type Fixture } from './fleet-fixture.js';

const JOB = 'forgery';
const FORGED_G = 777.25;
const tokens = { 'agent-0': 'token-zero', 'agent-1': 'token-one', 'agent-2': 'token-two' };

describe.skipIf(!natsServerPath())('forged and garbage NATS messages with app tokens', () => {
  let server: NatsServer;
  let f: Fixture;
  let coordinatorNc: NatsConnection;
  let attacker: NatsConnection;
  let coordinator: Coordinator;
  let listener: Listener | undefined;
  const agents: Agent[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    f = await fixture();
    coordinatorNc = await connect({ servers: server.url });
    attacker = await connect({ servers: server.url });
    const inner = new NatsTransport({ jobId: JOB, connection: coordinatorNc });
    const recording: Transport = { listen: async (handler) => (listener = await inner.listen(handler)), connect: (c) => inner.connect(c) };
    coordinator = await startCoordinator(f, recording, {
      jobId: JOB,
      rounds: 12,
      deadlineMs: 10_000,
      heartbeatMs: 250,
      batchSize: 32,
      tokens,
      strategy: { agentsPerRound: 3, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 5 },
    });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
    await attacker.close();
    await coordinatorNc.close();
    await server.stop(true);
  });

  it('accepts nothing forged, replayed or malformed, and charges no agent for it', async () => {
    const subjects = jobSubjects(JOB);
    const session = loadProtocol().coordinator.service.Session!;
    let tasksSeen = 0;
    let forgedSent = 0;
    // The eavesdropper answers every task it reads, before the agent can, with a result the checks would pass.
    attacker.subscribe(subjects.downAll, {
      callback: (_err, msg) => {
        let message;
        try {
          message = decodeCoordinatorMessage(session.responseDeserialize(Buffer.from(msg.data)));
        } catch {
          return;
        }
        if (message.kind !== 'task') return;
        tasksSeen++;
        const up = msg.subject.replace('.down.', '.up.');
        const { round, attempt, seeds, epsilon } = message.task;
        const result = { round, attempt, seeds, g: seeds.map(() => FORGED_G), lossPlus: seeds.map(() => 1 + FORGED_G * epsilon), lossMinus: seeds.map(() => 1 - FORGED_G * epsilon), sampleCount: 1 };
        const bytes = session.requestSerialize(encodeAgentMessage({ kind: 'result', result }));
        for (const seq of ['1', '2', '1000000']) {
          const h = natsHeaders();
          h.set('Mezo-Seq', seq);
          h.set('Mezo-Mac', 'A'.repeat(43));
          attacker.publish(up, bytes, { headers: h });
          forgedSent++;
        }
        attacker.publish(up, bytes); // no MAC at all
        const end = natsHeaders();
        end.set('Mezo-Control', 'end');
        end.set('Mezo-Status', 'CANCELLED');
        attacker.publish(up, new Uint8Array(0), { headers: end }); // a forged session end
        attacker.publish(up, Buffer.from('garbage that is not protobuf \u0000\u00ff'));
        forgedSent += 3;
      },
    });
    // Every uplink message the agents send is played again, headers and all.
    let replayed = 0;
    attacker.subscribe(subjects.upAll, {
      callback: (_err, msg) => {
        if (msg.headers?.get('Mezo-Replay') === '1') return;
        const h = natsHeaders();
        for (const [key, values] of msg.headers ?? []) for (const v of values) h.append(key, v);
        h.set('Mezo-Replay', '1');
        attacker.publish(msg.subject, msg.data, { headers: h });
        replayed++;
      },
    });
    // Every request the agents make (Join, FetchLog, Session opens) is made again, headers and proof included.
    const replayCodes: string[] = [];
    const replays: Array<Promise<void>> = [];
    attacker.subscribe(subjects.rpcAll, {
      callback: (_err, msg) => {
        if (msg.headers?.get('Mezo-Replay') === '1' || !msg.headers?.has('Mezo-Proof')) return;
        const h = natsHeaders();
        for (const [key, values] of msg.headers) for (const v of values) h.append(key, v);
        h.set('Mezo-Replay', '1');
        replays.push(
          attacker.request(msg.subject, msg.data, { headers: h, timeout: 10_000 }).then(
            (reply) => void replayCodes.push(reply.headers?.get('Mezo-Status') ?? 'OK'),
            () => void replayCodes.push('NO-REPLY'),
          ),
        );
      },
    });
    await attacker.flush();

    const reports: RoundReport[] = [];
    coordinator.onRound((r) => reports.push(r));
    for (const [k, agentId] of Object.keys(tokens).entries()) {
      const agent = new Agent({
        agentId,
        token: tokens[agentId as keyof typeof tokens],
        transport: new NatsTransport({ jobId: JOB, servers: server.url }),
        prepared: f.prepared,
        createBackend: async (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
        data: f.task.agents[k]!,
        dataSeed: k,
        capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
        reconnect: { initialMs: 20, maxMs: 200 },
      });
      agents.push(agent);
      void agent.run().catch(() => undefined);
    }
    // Garbage on every request subject of every agent, and joins without a proof of the token.
    const nc = attacker;
    const garbageCodes: string[] = [];
    for (const agentId of Object.keys(tokens)) {
      for (const method of ['join', 'fetchlog', 'snapshot', 'session', 'nosuch']) {
        const h = natsHeaders();
        h.set('Mezo-Token', tokens[agentId as keyof typeof tokens].slice(0, 3));
        h.set('Mezo-Session', 'S1');
        h.set('Mezo-Proof', 'B'.repeat(43));
        h.set('Mezo-Time', String(Date.now()));
        h.set('Mezo-Nonce', 'C'.repeat(22));
        const reply = await nc.request(subjects.rpc(agentId, method as 'join'), Buffer.from([0x0a, 0x03, 0x41, 0x42]), { headers: h, timeout: 10_000 });
        garbageCodes.push(reply.headers?.get('Mezo-Status') ?? 'OK');
      }
    }
    expect(garbageCodes.every((c) => c !== 'OK')).toBe(true);

    const report = await coordinator.run();
    expect(report).toMatchObject({ version: 12, stopped: false });
    expect(tasksSeen).toBeGreaterThanOrEqual(36);
    expect(forgedSent).toBeGreaterThan(0);
    expect(replayed).toBeGreaterThan(0);
    // Not one forged scalar merged: every merged g is an agent's own.
    const merged = reports.flatMap((r) => r.scalars.flatMap((s) => s.g));
    expect(merged.length).toBe(36);
    expect(merged).not.toContain(FORGED_G);
    // The forgeries were seen and dropped as such, and no honest agent was charged for them.
    const forged = (listener as unknown as { forged(): number }).forged();
    expect(forged).toBeGreaterThan(0);
    // A replayed request is refused (its nonce is spent), so it can neither re-join nor take over a session.
    await Promise.all(replays);
    expect(replayCodes.length).toBeGreaterThanOrEqual(6); // each agent's Join and Session open at least
    expect(replayCodes.filter((c) => c === 'OK')).toEqual([]);
    for (const id of Object.keys(tokens)) {
      expect(coordinator.agentStatus(id)!.stats).toMatchObject({ rejected: 0, rateLimited: 0 });
    }
    expect([...coordinator.traffic().keys()].sort()).toEqual(Object.keys(tokens).sort());
  });
});
