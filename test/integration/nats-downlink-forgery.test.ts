/**
 * Forged messages on the agents' NATS downlink, on a server without per-agent permissions (anyone may read and
 * publish anywhere). With app tokens every session message from the coordinator carries a sequence number and a
 * MAC under the session key, so an eavesdropper who reads every task can neither hand an agent a task, a ping or
 * a job end, nor end its session, nor replay the coordinator's own messages: each is dropped and counted, and
 * the job runs to its end as if nothing had been sent. A restarted coordinator, which lost the session keys,
 * ends a session it does not know with the update log's signature; such an end ends that session only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { Coordinator } from '../../coordinator/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { LogSigner, UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import {
  NatsTransport,
  decodeAgentMessage,
  decodeCoordinatorMessage,
  encodeCoordinatorMessage,
  jobSubjects,
  loadProtocol,
  type CoordinatorMessage,
} from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, paddingOf, until, type Fixture } from './fleet-fixture.js';

const tokens = { 'agent-0': 'token-zero', 'agent-1': 'token-one', 'agent-2': 'token-two' };
/** Marks the attacker's own messages, so it does not answer them. */
const MINE = 'Mezo-Attacker';
const FORGED_ROUND = 900;
const FORGED_NONCE = 987_654_321;

const session = loadProtocol().coordinator.service.Session!;
const downBytes = (message: CoordinatorMessage): Buffer => session.responseSerialize(encodeCoordinatorMessage(message));

function copyHeaders(from: MsgHdrs | undefined): MsgHdrs {
  const h = natsHeaders();
  for (const [key, values] of from ?? []) for (const v of values) h.append(key, v);
  h.set(MINE, '1');
  return h;
}

function marked(extra: Record<string, string> = {}): MsgHdrs {
  const h = natsHeaders();
  h.set(MINE, '1');
  for (const [key, value] of Object.entries(extra)) h.set(key, value);
  return h;
}

describe.skipIf(!natsServerPath())('forged NATS downlink messages with app tokens', () => {
  let server: NatsServer;
  let f: Fixture;
  const connections: NatsConnection[] = [];
  const coordinators: Coordinator[] = [];
  const agents: Agent[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    f = await fixture();
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    for (const c of coordinators) await c.close().catch(() => undefined);
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await server.stop(true);
  });

  const open = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    return nc;
  };

  const startCoordinator = async (jobId: string, nc: NatsConnection, signer: LogSigner, rounds: number, agentsPerRound: number): Promise<Coordinator> => {
    const coordinator = new Coordinator({
      log: UpdateLog.inMemory(logHeader(f.prepared, jobId), { signer }),
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport: new NatsTransport({ jobId, connection: nc }),
      // Heartbeats of 2 s: a session ends only when an agent is silent for 10 s, never in these runs.
      options: { jobId, rounds, deadlineMs: 20_000, heartbeatMs: 2000, batchSize: 32, tokens, strategy: { agentsPerRound, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 5 } },
    });
    await coordinator.listen();
    coordinators.push(coordinator);
    return coordinator;
  };

  const startAgent = (jobId: string, k: number, transport: NatsTransport): Agent => {
    const agentId = `agent-${k}`;
    const agent = new Agent({
      agentId,
      token: tokens[agentId as keyof typeof tokens],
      transport,
      prepared: f.prepared,
      createBackend: async (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
      data: f.task.agents[k]!,
      dataSeed: k,
      capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
      reconnect: { initialMs: 20, maxMs: 200 },
      onJobEnd: 'leave',
    });
    agents.push(agent);
    return agent;
  };

  it('drops forged and replayed tasks, pings, job ends and session ends, and the job completes untouched', async () => {
    const JOB = 'downlink-forgery';
    const ROUNDS = 8;
    const subjects = jobSubjects(JOB);
    const coordinator = await startCoordinator(JOB, await open(), LogSigner.generate(), ROUNDS, 3);
    const attacker = await open();

    // A genuine signed end for a session the coordinator does not know, to be replayed onto live sessions.
    let signedEnd: Msg | undefined;
    const made = attacker.subscribe(subjects.down('agent-0', 'madeup1'), { max: 1, callback: (_e, msg) => (signedEnd = msg) });
    attacker.publish(subjects.up('agent-0', 'madeup1'), Buffer.from([0x12, 0x00]), { headers: marked() });
    await until(() => signedEnd !== undefined, 15_000, 'the coordinator to end the made-up session');
    made.unsubscribe();
    expect(signedEnd!.headers?.get('Mezo-Signature')).toMatch(/^[0-9a-f]{128}$/);

    let forgedSent = 0;
    const genuineTasks = new Map<string, number>();
    attacker.subscribe(subjects.downAll, {
      callback: (_err, msg) => {
        if (msg.headers?.has(MINE)) return;
        const agentId = msg.subject.split('.')[3]!;
        // Every message of the coordinator is played again, headers, sequence number and MAC included.
        attacker.publish(msg.subject, msg.data, { headers: copyHeaders(msg.headers) });
        forgedSent++;
        let message: CoordinatorMessage;
        try {
          message = decodeCoordinatorMessage(session.responseDeserialize(Buffer.from(msg.data)));
        } catch {
          return;
        }
        if (message.kind !== 'task') return;
        genuineTasks.set(agentId, (genuineTasks.get(agentId) ?? 0) + 1);
        const task = { ...message.task, round: FORGED_ROUND, seeds: [424242n] };
        const forgeries: Array<[Uint8Array, MsgHdrs]> = [
          // A task, with no MAC and with made-up ones.
          [downBytes({ kind: 'task', task }), marked()],
          [downBytes({ kind: 'task', task }), marked({ 'Mezo-Seq': '1000000', 'Mezo-Mac': 'A'.repeat(43) })],
          // The genuine task's sequence number and MAC on a forged body.
          [downBytes({ kind: 'task', task }), marked({ 'Mezo-Seq': msg.headers?.get('Mezo-Seq') ?? '', 'Mezo-Mac': msg.headers?.get('Mezo-Mac') ?? '' })],
          [downBytes({ kind: 'ping', nonce: FORGED_NONCE }), marked()],
          [downBytes({ kind: 'jobEnd', jobEnd: { jobId: JOB, reason: 'stopped', version: task.version, headHash: '0'.repeat(64) } }), marked()],
          // Session ends: plain, with a made-up signature, and the coordinator's signed end of another session.
          [new Uint8Array(0), marked({ 'Mezo-Control': 'end', 'Mezo-Status': 'CANCELLED' })],
          [new Uint8Array(0), marked({ 'Mezo-Control': 'end', 'Mezo-Status': 'UNAVAILABLE', 'Mezo-Time': String(Date.now()), 'Mezo-Signature': 'ab'.repeat(64) })],
          [signedEnd!.data, copyHeaders(signedEnd!.headers)],
          [Buffer.from('garbage that is not protobuf \u0000\u00ff'), marked()],
        ];
        for (const [bytes, h] of forgeries) attacker.publish(msg.subject, bytes, { headers: h });
        forgedSent += forgeries.length;
      },
    });
    // Whatever the agents send back is read: an answer to a forged task or ping would show here.
    const answeredForgeries: string[] = [];
    attacker.subscribe(subjects.upAll, {
      callback: (_err, msg) => {
        if (msg.headers?.has(MINE) || msg.data.length === 0) return;
        try {
          const m = decodeAgentMessage(session.requestDeserialize(Buffer.from(msg.data)));
          if ((m.kind === 'result' && m.result.round === FORGED_ROUND) || (m.kind === 'pong' && m.nonce === FORGED_NONCE)) answeredForgeries.push(m.kind);
        } catch {
          // not the attacker's business
        }
      },
    });
    await attacker.flush();

    const transports = Object.keys(tokens).map(() => new NatsTransport({ jobId: JOB, servers: server.url, livenessMs: 600_000 }));
    const runs = transports.map((transport, k) => startAgent(JOB, k, transport).run());
    const report = await coordinator.run();
    expect(report).toMatchObject({ version: ROUNDS, stopped: false });
    await Promise.all(runs);
    expect(forgedSent).toBeGreaterThan(0);
    for (const [k, agentId] of Object.keys(tokens).entries()) {
      const agent = agents[k]!;
      // Each agent ran the job to its end on its first session: no forged end, job end or task took effect.
      expect(agent.exit).toMatchObject({ reason: 'job-ended', jobEnd: { reason: 'completed', version: ROUNDS } });
      expect(agent.state.reconnects).toBe(0);
      expect(agent.state.tasksDone).toBeLessThanOrEqual(genuineTasks.get(agentId) ?? 0);
      expect(coordinator.agentStatus(agentId)!.stats).toMatchObject({ rejected: 0 });
      expect(transports[k]!.forgedDownlink()).toBeGreaterThan(0);
    }
    expect(answeredForgeries).toEqual([]);
  });

  it('a restarted coordinator ends the sessions it does not know with a signed end, and its agents re-join', async () => {
    const JOB = 'downlink-restart';
    const signer = LogSigner.generate();
    const firstNc = await open();
    await startCoordinator(JOB, firstNc, signer, 2, 1);
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, livenessMs: 600_000 });
    const agent = startAgent(JOB, 0, transport);
    const run = agent.run();
    await until(() => coordinators.at(-1)!.agentStatus('agent-0')?.connected === true, 30_000, 'the agent to open its session');
    // The coordinator vanishes without a word (its connection drops), and a new one with the same key takes over.
    await firstNc.close();
    const second = await startCoordinator(JOB, await open(), signer, 2, 1);
    // The agent's next heartbeat on its old session is answered with the signed end: it re-joins the new
    // coordinator long before its (10-minute) liveness window would notice.
    await until(() => agent.state.reconnects >= 1, 30_000, 'the agent to take the signed end');
    expect(await second.run()).toMatchObject({ version: 2, stopped: false });
    await run;
    expect(agent.exit).toMatchObject({ reason: 'job-ended', jobEnd: { reason: 'completed', version: 2 } });
    expect(transport.forgedDownlink()).toBe(0);
  });
});
