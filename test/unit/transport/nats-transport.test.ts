/**
 * The NATS transport against a real nats-server: joins and unary calls with status names, Session emulation in
 * both directions (order, refusal, ends, oversize), one publish per broadcast, traffic counts, listener close,
 * a vanished or restarted coordinator, snapshots in pieces, and many clients over one shared connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Msg } from 'nats';
import {
  NatsTransport,
  TransportError,
  checkNatsHealth,
  jobSubjects,
  type AgentMessage,
  type CoordinatorHandler,
  type CoordinatorMessage,
  type JoinRequest,
  type Listener,
  type ServerSession,
  type SnapshotChunk,
} from '../../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';
import { LogSigner } from '../../../shared/log/log-signature.js';

const sha = 'cd'.repeat(32);
const JOB = 'nats-unit';
const accepted = joinAcceptedFixture(JOB, sha);
const joinRequest = (agentId: string, token = 'ok'): JoinRequest => ({
  agentId,
  token,
  capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' },
  baseSha256: sha,
  versionHeld: 0,
});
const update = (version: number): CoordinatorMessage => ({
  kind: 'update',
  update: { kind: 'update', round: version - 1, version, terms: [{ seed: 7n, coeff: -0.5 }], lr: 1e-3, decay: 1, prevHash: sha, hash: 'ab'.repeat(32) },
});
const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(5);
  }
}

interface Served {
  sessions: ServerSession[];
  received: Map<ServerSession, AgentMessage[]>;
  invalid: string[];
  closed: Map<ServerSession, string>;
}

function handler(served: Served, overrides: Partial<CoordinatorHandler> = {}): CoordinatorHandler {
  return {
    join: async (request) => {
      if (request.token !== 'ok') throw new TransportError('UNAUTHENTICATED', 'bad token');
      return accepted;
    },
    fetchLog: async (request, info) => {
      if (info.token !== 'ok') throw new TransportError('UNAUTHENTICATED', `bad token for ${info.agentId}`);
      if (request.fromVersion > 0) throw new TransportError('OUT_OF_RANGE', 'beyond the head');
      return { entries: [], headVersion: 0 };
    },
    fetchSnapshot: async () => {
      throw new TransportError('NOT_FOUND', 'no snapshot');
    },
    session: (session) => {
      if (session.info.token !== 'ok') throw new TransportError('UNAUTHENTICATED', 'bad session token');
      served.sessions.push(session);
      served.received.set(session, []);
      session.listen({
        message: (m) => served.received.get(session)!.push(m),
        invalid: (e) => served.invalid.push(e.message),
        closed: (e) => served.closed.set(session, e?.code ?? 'OK'),
      });
    },
    // Every agent proves it holds 'ok' (the token itself never crosses NATS).
    secretOf: () => 'ok',
    ...overrides,
  };
}

const newServed = (): Served => ({ sessions: [], received: new Map(), invalid: [], closed: new Map() });

/** Opens a client session and records what it hears. */
function openSession(client: ReturnType<NatsTransport['connect']>) {
  const heard: CoordinatorMessage[] = [];
  const invalid: string[] = [];
  let closedWith: string | undefined;
  const session = client.session({
    message: (m) => heard.push(m),
    invalid: (e) => invalid.push(e.message),
    closed: (e) => (closedWith = e?.code ?? 'OK'),
  });
  return { session, heard, invalid, closed: () => closedWith };
}

describe.skipIf(!natsServerPath())('NatsTransport', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop(true);
  });

  it('joins, serves unary calls, carries status names and counts traffic per agent', async () => {
    const served = newServed();
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, callTimeoutMs: 3000 });
    const listener = await transport.listen(handler(served));
    try {
      expect(listener.address).toMatch(/^nats:\/\/127\.0\.0\.1:\d+\/mezo\.nats-unit$/);
      const client = transport.connect({ agentId: 'agent.1', token: 'ok' });
      await expect(client.join(joinRequest('agent.1'))).resolves.toMatchObject(accepted);
      const no = transport.connect({ agentId: 'agent.1', token: 'no' });
      await expect(no.join(joinRequest('agent.1', 'no'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'bad token' });
      no.close();
      // The subject names the agent: a request for another agent is refused.
      await expect(client.join(joinRequest('agent-2'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      await expect(client.fetchLog({ fromVersion: 0, toVersion: 0 })).resolves.toEqual({ entries: [], headVersion: 0 });
      await expect(client.fetchLog({ fromVersion: 3, toVersion: 0 })).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
      const other = transport.connect({ agentId: 'agent.1', token: 'wrong' });
      await expect(other.fetchLog({ fromVersion: 0, toVersion: 0 })).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'bad token for agent.1' });
      other.close();
      const snapshot = async (): Promise<unknown> => {
        for await (const chunk of client.fetchSnapshot({ version: 0 })) return chunk;
        return undefined;
      };
      await expect(snapshot()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // Validation on receipt: a malformed request is refused with the offending field.
      const nc = await connect({ servers: server.url });
      const reply = await nc.request(jobSubjects(JOB).rpc('agent.1', 'join'), new Uint8Array([0x0a, 0x01, 0x41]));
      expect(reply.headers?.get('Mezo-Status')).toBe('INVALID_ARGUMENT');
      await nc.close();

      // Accepted calls count for the agent; refused ones (bad tokens, another agent's id, garbage) only in total.
      const traffic = listener.traffic().get('agent.1')!;
      expect(traffic.bytesUp).toBeGreaterThan(90);
      expect(traffic.bytesDown).toBeGreaterThan(200);
      expect([...listener.traffic().keys()]).toEqual(['agent.1']);
      expect(listener.refused!()).toMatchObject({ calls: 6 });
      const probe = await connect({ servers: server.url });
      expect(await checkNatsHealth(probe, JOB)).toBe('SERVING');
      listener.setHealth('NOT_SERVING');
      expect(await checkNatsHealth(probe, JOB)).toBe('NOT_SERVING');
      await probe.close();
      client.close();
    } finally {
      await listener.close();
    }
    const late = transport.connect({ agentId: 'agent.1', token: 'ok' });
    await expect(late.join(joinRequest('agent.1'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    late.close();
  });

  it('runs sessions in order both ways, reports invalid messages, ends them with a status from either side', async () => {
    const served = newServed();
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, maxMessageBytes: 2000 });
    const listener = await transport.listen(handler(served));
    try {
      const client = transport.connect({ agentId: 'a1', token: 'ok' });
      const s = openSession(client);
      // Sent before the coordinator accepted: queued and delivered in order.
      s.session.send({ kind: 'pong', nonce: 1 });
      s.session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: sha } });
      s.session.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: [1n], g: [Number.NaN], lossPlus: [1], lossMinus: [1], sampleCount: 1 } });
      for (let n = 2; n <= 50; n++) s.session.send({ kind: 'pong', nonce: n });
      // 52 sent, one of them invalid.
      await until(() => (served.received.get(served.sessions[0]!)?.length ?? 0) === 51, 5000, 'the uplink');
      const server0 = served.sessions[0]!;
      expect(server0.info).toMatchObject({ agentId: 'a1', token: 'ok' });
      const up = served.received.get(server0)!;
      expect(up[1]!.kind).toBe('heartbeat');
      expect(up.filter((m) => m.kind === 'pong').map((m) => (m as { nonce: number }).nonce)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(served.invalid).toEqual([expect.stringContaining('result.g[0]')]);

      for (let n = 1; n <= 50; n++) server0.send({ kind: 'ping', nonce: n });
      await until(() => s.heard.length === 50, 5000, 'the downlink');
      expect(s.heard.map((m) => (m as { nonce: number }).nonce)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

      // The coordinator ends the session with a status: the agent hears that status.
      server0.end(new TransportError('ABORTED', 'replaced by a newer session'));
      await until(() => s.closed() !== undefined, 5000, 'the end');
      expect(s.closed()).toBe('ABORTED');
      expect(served.closed.get(server0)).toBe('ABORTED');
      expect(server0.send({ kind: 'ping', nonce: 1 })).toBe(false);
      expect(s.session.send({ kind: 'pong', nonce: 1 })).toBe(false);

      // The agent ends one: the coordinator hears CANCELLED.
      const s2 = openSession(client);
      await until(() => served.sessions.length === 2, 5000, 'a second session');
      s2.session.end();
      await until(() => served.closed.has(served.sessions[1]!), 5000, 'the agent end');
      expect(served.closed.get(served.sessions[1]!)).toBe('CANCELLED');
      await until(() => s2.closed() !== undefined);
      expect(s2.closed()).toBe('CANCELLED');

      // Oversized uplink: the session ends with RESOURCE_EXHAUSTED on both sides.
      const s3 = openSession(client);
      await until(() => served.sessions.length === 3, 5000, 'a third session');
      s3.session.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: Array.from({ length: 1000 }, (_, i) => BigInt(i) * 1_000_000_007n), g: [], lossPlus: [], lossMinus: [], sampleCount: 1 } });
      await until(() => s3.closed() !== undefined && served.closed.has(served.sessions[2]!), 5000, 'the oversize end');
      expect(s3.closed()).toBe('RESOURCE_EXHAUSTED');
      expect(served.closed.get(served.sessions[2]!)).toBe('RESOURCE_EXHAUSTED');

      // Oversized downlink: likewise.
      const s4 = openSession(client);
      await until(() => served.sessions.length === 4, 5000, 'a fourth session');
      served.sessions[3]!.send({ kind: 'task', task: { jobId: JOB, round: 1, attempt: 0, version: 0, seeds: Array.from({ length: 400 }, (_, i) => BigInt(i) * 1_000_000_007n), epsilon: 1e-3, batchSize: 1, deadlineMs: 10 } });
      await until(() => s4.closed() !== undefined, 5000, 'the oversize downlink end');
      expect(s4.closed()).toBe('RESOURCE_EXHAUSTED');
      expect(served.closed.get(served.sessions[3]!)).toBe('RESOURCE_EXHAUSTED');

      // A session the handler refuses carries the handler's status; so does a bad token.
      const refused = openSession(transport.connect({ agentId: 'a1', token: 'bad' }));
      await until(() => refused.closed() !== undefined, 5000, 'the refusal');
      expect(refused.closed()).toBe('UNAUTHENTICATED');
      client.close();
    } finally {
      await listener.close();
    }
  });

  it('publishes a broadcast once, counts it per agent session, and sends it to sessions opened after it', async () => {
    const served = newServed();
    const coordinatorNc = await connect({ servers: server.url });
    const agentsNc = await connect({ servers: server.url });
    const spy = await connect({ servers: server.url });
    const subjects = jobSubjects(JOB);
    const seen: Msg[] = [];
    spy.subscribe(subjects.updates, { callback: (_, m) => seen.push(m) });
    const unicasts: string[] = [];
    spy.subscribe(subjects.downAll, { callback: (_, m) => unicasts.push(m.subject) });
    await spy.flush();
    const listener = await new NatsTransport({ jobId: JOB, connection: coordinatorNc }).listen(handler(served));
    const agents = new NatsTransport({ jobId: JOB, connection: agentsNc });
    try {
      const sessions = Array.from({ length: 20 }, (_, i) => openSession(agents.connect({ agentId: `v${i}`, token: 'ok' })));
      await until(() => served.sessions.length === 20, 5000, 'twenty sessions');
      const message = update(1);
      for (const s of served.sessions) expect(s.send(message)).toBe(true);
      await until(() => sessions.every((s) => s.heard.length === 1), 5000, 'the broadcast');
      await spy.flush();
      await tick();
      expect(seen).toHaveLength(1);
      expect(unicasts).toHaveLength(0);
      expect(sessions[0]!.heard[0]).toEqual(message);
      const bytes = seen[0]!.data.length;
      for (let i = 0; i < 20; i++) expect(listener.traffic().get(`v${i}`)!.bytesDown).toBe(bytes);

      // A session opened after the publication gets the same update on its own downlink.
      const late = openSession(agents.connect({ agentId: 'late', token: 'ok' }));
      await until(() => served.sessions.length === 21, 5000, 'the late session');
      served.sessions[20]!.send(message);
      await until(() => late.heard.length === 1, 5000, 'the late update');
      expect(late.heard[0]).toEqual(message);
      await spy.flush();
      expect(seen).toHaveLength(1);
      expect(unicasts).toEqual([expect.stringMatching(/^mezo\.nats-unit\.down\.late\./)]);
      // Everyone else was not sent it twice.
      expect(sessions.every((s) => s.heard.length === 1)).toBe(true);
    } finally {
      await listener.close();
      await Promise.all([coordinatorNc.close(), agentsNc.close(), spy.close()]);
    }
  });

  it('ends every session with UNAVAILABLE when the listener closes', async () => {
    const served = newServed();
    const transport = new NatsTransport({ jobId: JOB, servers: server.url });
    const listener = await transport.listen(handler(served));
    const clients = [0, 1, 2].map((i) => transport.connect({ agentId: `c${i}`, token: 'ok' }));
    const sessions = clients.map((c) => openSession(c));
    await until(() => served.sessions.length === 3, 5000, 'three sessions');
    await listener.close();
    await until(() => sessions.every((s) => s.closed() !== undefined), 5000, 'the ends');
    expect(sessions.map((s) => s.closed())).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect([...served.closed.values()]).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    clients.forEach((c) => c.close());
  });

  it('closes an agent session when its coordinator vanishes, or restarts without knowing the session', async () => {
    // Vanished: the coordinator's connection dies without a word; nothing arrives on the session any more.
    const coordinatorNc = await connect({ servers: server.url });
    const first = newServed();
    await new NatsTransport({ jobId: JOB, connection: coordinatorNc }).listen(handler(first));
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, livenessMs: 400 });
    const client = transport.connect({ agentId: 'r1', token: 'ok' });
    const s = openSession(client);
    await until(() => first.sessions.length === 1, 5000, 'the session');
    const started = Date.now();
    await coordinatorNc.close();
    await until(() => s.closed() !== undefined, 5000, 'liveness to expire');
    expect(s.closed()).toBe('UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    client.close();

    // Restarted: the new coordinator answers the agent's next uplink by ending the session it does not know. It
    // lost the session key, so it signs the end with the log's key, which the agent learnt at its Join.
    const signer = LogSigner.generate();
    const signing: Partial<CoordinatorHandler> = {
      join: async () => ({ ...accepted, logPublicKey: signer.publicKey }),
      signStatement: (kind, fields) => signer.signStatement(kind, fields),
    };
    const a = newServed();
    const listenerA = await new NatsTransport({ jobId: JOB, servers: server.url }).listen(handler(a, signing));
    const patientTransport = new NatsTransport({ jobId: JOB, servers: server.url, livenessMs: 60_000 });
    const patient = patientTransport.connect({ agentId: 'r2', token: 'ok' });
    await patient.join(joinRequest('r2'));
    const s2 = openSession(patient);
    await until(() => a.sessions.length === 1, 5000, 'the session');
    // Simulate a crash: the listener's subscriptions vanish without ending the session.
    (listenerA as unknown as { subscriptions: Array<{ unsubscribe(): void }> }).subscriptions.forEach((sub) => sub.unsubscribe());
    const b = newServed();
    const listenerB = await new NatsTransport({ jobId: JOB, servers: server.url }).listen(handler(b, signing));
    s2.session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: sha } });
    await until(() => s2.closed() !== undefined, 3000, 'the unknown-session end');
    expect(s2.closed()).toBe('UNAVAILABLE');
    expect(b.sessions).toHaveLength(0);
    expect(patientTransport.forgedDownlink()).toBe(0);
    patient.close();
    await listenerB.close();
    await listenerA.close();
  });

  it('streams a snapshot in pieces that fit the message limit', async () => {
    const total = 600_000;
    const body = Buffer.alloc(total);
    for (let i = 0; i < total; i++) body[i] = (i * 31) & 0xff;
    const chunks: SnapshotChunk[] = [0, 1].map((k) => ({
      version: 3,
      entryHash: sha,
      weightsSha256: sha,
      totalBytes: total,
      offset: k * 300_000,
      data: body.subarray(k * 300_000, (k + 1) * 300_000),
    }));
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, maxMessageBytes: 100_000 });
    const listener = await transport.listen(handler(newServed(), { fetchSnapshot: async () => chunks }));
    try {
      const client = transport.connect({ agentId: 'snap', token: 'ok' });
      const got: SnapshotChunk[] = [];
      for await (const chunk of client.fetchSnapshot({ version: 3 })) got.push(chunk);
      expect(got.length).toBeGreaterThan(6);
      expect(got.every((c) => c.data.length <= 100_000 && c.version === 3 && c.totalBytes === total)).toBe(true);
      const joined = Buffer.concat(got.map((c) => c.data));
      expect(joined.equals(body)).toBe(true);
      expect(got.map((c) => c.offset)).toEqual(got.map((_, i) => got.slice(0, i).reduce((n, c) => n + c.data.length, 0)));
      // Abandoning a transfer part way is fine too.
      for await (const chunk of client.fetchSnapshot({ version: 3 })) {
        expect(chunk.offset).toBe(0);
        break;
      }
      client.close();
    } finally {
      await listener.close();
    }
  });

  it('carries many clients over one shared connection with one broadcast and one downlink subscription', async () => {
    const served = newServed();
    const coordinatorNc = await connect({ servers: server.url });
    const shared = await connect({ servers: server.url });
    const listener: Listener = await new NatsTransport({ jobId: JOB, connection: coordinatorNc }).listen(handler(served));
    const transport = new NatsTransport({ jobId: JOB, connection: shared, livenessMs: 60_000 });
    try {
      const count = 300;
      const clients = Array.from({ length: count }, (_, i) => transport.connect({ agentId: `sim-${i}`, token: 'ok' }));
      await Promise.all(clients.map((c, i) => c.join(joinRequest(`sim-${i}`))));
      const sessions = clients.map((c) => openSession(c));
      await until(() => served.sessions.length === count, 10_000, 'every session');
      const subscriptions = (shared as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size();
      // The request mux inbox, the broadcast, and one wildcard for every agent's downlink.
      expect(subscriptions).toBe(3);
      for (const s of served.sessions) s.send({ kind: 'ping', nonce: Number(s.info.agentId.slice(4)) });
      const broadcast = update(1);
      for (const s of served.sessions) s.send(broadcast);
      await until(() => sessions.every((s) => s.heard.length === 2), 10_000, 'pings and the broadcast');
      // Each session's ping and the one broadcast, in either order: a ping that beats its session's open reply is
      // held until the reply makes its MAC checkable, while the broadcast is not session-keyed.
      sessions.forEach((s, i) => {
        expect(s.heard).toContainEqual({ kind: 'ping', nonce: i });
        expect(s.heard.filter((m) => m.kind === 'update')).toHaveLength(1);
      });
      clients.forEach((c) => c.close());
      await until(() => served.closed.size === count, 10_000, 'every session to end');
      expect(new Set(served.closed.values())).toEqual(new Set(['CANCELLED']));
    } finally {
      await listener.close();
      await Promise.all([coordinatorNc.close(), shared.close()]);
    }
  });

  it('reports an unreachable server as UNAVAILABLE, and a bad agent id as INVALID_ARGUMENT', async () => {
    const invalid = new NatsTransport({ jobId: JOB, servers: server.url }).connect({ agentId: 'no spaces', token: '' });
    await expect(invalid.join(joinRequest('x'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    invalid.close();
    const client = new NatsTransport({ jobId: JOB, servers: 'nats://127.0.0.1:1' }).connect({ agentId: 'x', token: '' });
    await expect(client.join(joinRequest('x'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const s = openSession(client);
    await until(() => s.closed() !== undefined);
    expect(s.closed()).toBe('UNAVAILABLE');
    client.close();
  });
});

