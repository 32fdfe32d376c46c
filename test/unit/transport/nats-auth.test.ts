/**
 * NATS-level access control from a real nats-server configured by natsJobAuthConfig: agents confined to their own
 * subjects (they cannot publish results as another agent, read another agent's downlink or inbox, or write or
 * purge the log stream), user/password and nkey users, token authentication, and TLS with mutual TLS
 * (certificates made here with the system's openssl; nothing is committed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import {
  NatsTransport,
  TransportError,
  connectNats,
  createNatsUserNkey,
  jobSubjects,
  natsJobAuthConfig,
  type AgentMessage,
  type CoordinatorHandler,
  type JoinRequest,
  type Listener,
  type ServerSession,
} from '../../../shared/transport/index.js';
import { openJetStreamLog, type UpdateLog } from '../../../shared/log/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';
import { haveOpenssl, makeTestPki } from '../../helpers/test-pki.js';

const JOB = 'auth-job';
const sha = 'ab'.repeat(32);
const header = { jobId: JOB, baseSha256: sha, distribution: 'gaussian' as const };
const subjects = jobSubjects(JOB);

const joinRequest = (agentId: string): JoinRequest => ({ agentId, token: 't', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: sha, versionHeld: 0 });

function handler(log: UpdateLog | undefined, onMessage: (session: ServerSession, m: AgentMessage) => void = () => undefined): CoordinatorHandler {
  return {
    join: async () => ({
      jobId: JOB,
      distribution: 'gaussian',
      epsilon: 1e-3,
      baseSha256: sha,
      currentVersion: log?.version ?? 0,
      headHash: log?.headHash ?? sha,
      genesisHash: log?.genesisHash ?? sha,
      decayRanges: [],
      heartbeatMs: 1000,
      snapshotVersion: 0,
      snapshotBytes: 0,
      logBytes: 0,
      logBytesAfterSnapshot: 0,
      logFloor: 0,
    }),
    fetchLog: async (request) => ({ entries: log ? log.entries(request.fromVersion, request.toVersion || log.version) : [], headVersion: log?.version ?? 0 }),
    fetchSnapshot: async () => {
      throw new TransportError('NOT_FOUND', 'none');
    },
    session: (session) => session.listen({ message: (m) => onMessage(session, m), invalid: () => undefined, closed: () => undefined }),
  };
}

/** Collects the asynchronous errors (permission violations) the server reports on a connection. */
function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      const context = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (s.type === 'error' && context) seen.push(`${s.data} ${context.operation} ${context.subject}`);
    }
  })();
  return seen;
}

const until = async (predicate: () => boolean, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.skipIf(!natsServerPath())('NATS permissions per agent', () => {
  let server: NatsServer;
  let coordinatorNc: NatsConnection;
  let log: UpdateLog;
  let listener: Listener;
  const nkey = createNatsUserNkey();
  const results: Array<{ agent: string; kind: string }> = [];

  beforeAll(async () => {
    server = await startNatsServer({
      config: natsJobAuthConfig({
        jobId: JOB,
        coordinator: { user: 'coordinator', password: 'c-secret' },
        agents: [
          { agentId: 'a.1', credential: { user: 'a.1', password: 'a1-secret' } },
          { agentId: 'a2', credential: { nkey: nkey.publicKey } },
        ],
      }),
    });
    coordinatorNc = await connectNats({ servers: server.url, auth: { user: 'coordinator', pass: 'c-secret' } });
    log = await openJetStreamLog({ connection: coordinatorNc, header });
    for (let round = 0; round < 3; round++) await log.append({ round, lr: 1e-3, terms: [{ seed: BigInt(round + 1), coeff: 0.5 }] });
    listener = await new NatsTransport({ jobId: JOB, connection: coordinatorNc }).listen(
      handler(log, (session, m) => results.push({ agent: session.info.agentId, kind: m.kind })),
    );
  });
  afterAll(async () => {
    await listener?.close();
    await log?.close();
    await coordinatorNc?.close();
    await server?.stop(true);
  });

  it('lets each agent use its own subjects, with user/password or an nkey, and read the log stream', async () => {
    const a1 = new NatsTransport({ jobId: JOB, servers: server.url, auth: { user: 'a.1', pass: 'a1-secret' }, readLogFromStream: true }).connect({ agentId: 'a.1', token: 't' });
    const a2 = new NatsTransport({ jobId: JOB, servers: server.url, auth: { nkeySeed: nkey.seed } }).connect({ agentId: 'a2', token: 't' });
    try {
      expect((await a1.join(joinRequest('a.1'))).currentVersion).toBe(3);
      expect((await a2.join(joinRequest('a2'))).currentVersion).toBe(3);
      // From the stream itself (direct gets), with the same entries the coordinator holds.
      expect((await a1.fetchLog({ fromVersion: 1, toVersion: 0 })).entries).toEqual(log.entries(1));
      for (const [client, id] of [[a1, 'a.1'], [a2, 'a2']] as const) {
        const session = client.session({ message: () => undefined, invalid: () => undefined, closed: () => undefined });
        session.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: [1n], g: [0], lossPlus: [1], lossMinus: [1], sampleCount: 1 } });
        await until(() => results.some((r) => r.agent === id));
      }
    } finally {
      a1.close();
      a2.close();
    }
  });

  it('refuses an agent that publishes as another agent, reads another agent\'s subjects, or writes the log', async () => {
    const nc = await connect({ servers: server.url, user: 'a.1', pass: 'a1-secret', inboxPrefix: subjects.inboxPrefix('a.1') });
    const errors = violations(nc);
    try {
      const before = results.length;
      const sessionSubject = subjects.up('a2', 'someSession');
      // Results for another agent, a request on its behalf, the log's subjects and the stream API.
      nc.publish(sessionSubject, new Uint8Array([1]));
      nc.publish(subjects.rpc('a2', 'join'), new Uint8Array([1]));
      nc.publish(subjects.logEntry, new Uint8Array(64));
      nc.publish(subjects.logHeader, new Uint8Array(8));
      await expect(nc.request(`$JS.API.STREAM.PURGE.${subjects.stream}`, new Uint8Array(), { timeout: 2000 })).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
      await expect(nc.request(`$JS.API.STREAM.MSG.DELETE.${subjects.stream}`, JSON.stringify({ seq: 2 }), { timeout: 2000 })).rejects.toMatchObject({
        code: 'PERMISSIONS_VIOLATION',
      });
      await expect(nc.request(`$JS.API.STREAM.DELETE.${subjects.stream}`, new Uint8Array(), { timeout: 2000 })).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
      // Reading someone else's downlink or inbox, or the coordinator's traffic.
      const refused: string[] = [];
      for (const subject of [subjects.downOf('a2'), `${subjects.inboxPrefix('a2')}.>`, subjects.upAll, subjects.downAll]) {
        nc.subscribe(subject, { callback: (err) => err && refused.push(subject) });
      }
      await nc.flush();
      const expected = [
        `PERMISSIONS_VIOLATION publish ${sessionSubject}`,
        `PERMISSIONS_VIOLATION publish ${subjects.rpc('a2', 'join')}`,
        `PERMISSIONS_VIOLATION publish ${subjects.logEntry}`,
        `PERMISSIONS_VIOLATION publish ${subjects.logHeader}`,
        `PERMISSIONS_VIOLATION subscription ${subjects.downOf('a2')}`,
        `PERMISSIONS_VIOLATION subscription ${subjects.inboxPrefix('a2')}.>`,
      ];
      // The server reports each violation asynchronously and in no promised order: wait for all of them.
      await until(() => expected.every((e) => errors.includes(e)) && refused.length === 4).catch(() => undefined);
      expect(errors).toEqual(expect.arrayContaining(expected));
      expect(refused).toHaveLength(4);
      expect(results.length).toBe(before);
      // The stream is untouched.
      const jsm = await coordinatorNc.jetstreamManager();
      expect((await jsm.streams.info(subjects.stream)).state).toMatchObject({ messages: 4, last_seq: 4 });
      // Its own subjects work on the same connection.
      const own = await nc.request(subjects.health, new Uint8Array(), { timeout: 2000 });
      expect(new TextDecoder().decode(own.data)).toBe('SERVING');
    } finally {
      await nc.close();
    }

    // Through the transport: agent a.1's NATS user cannot speak as a2.
    const impostor = new NatsTransport({ jobId: JOB, servers: server.url, auth: { user: 'a.1', pass: 'a1-secret' }, callTimeoutMs: 2000 }).connect({ agentId: 'a2', token: 't' });
    await expect(impostor.join(joinRequest('a2'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    impostor.close();
    // Wrong password or an unknown nkey: UNAUTHENTICATED.
    const wrong = new NatsTransport({ jobId: JOB, servers: server.url, auth: { user: 'a.1', pass: 'nope' } }).connect({ agentId: 'a.1', token: 't' });
    await expect(wrong.join(joinRequest('a.1'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    wrong.close();
    const stranger = new NatsTransport({ jobId: JOB, servers: server.url, auth: { nkeySeed: createNatsUserNkey().seed } }).connect({ agentId: 'a2', token: 't' });
    await expect(stranger.join(joinRequest('a2'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    stranger.close();
  });
});

describe.skipIf(!natsServerPath())('NATS token authentication', () => {
  it('connects with the server token and refuses a wrong one', async () => {
    const server = await startNatsServer({ config: 'authorization { token: "s3cret-token" }' });
    try {
      const transport = new NatsTransport({ jobId: JOB, servers: server.url, auth: { token: 's3cret-token' } });
      const listener = await transport.listen(handler(undefined));
      const client = transport.connect({ agentId: 'tok', token: 't' });
      expect((await client.join(joinRequest('tok'))).jobId).toBe(JOB);
      client.close();
      const bad = new NatsTransport({ jobId: JOB, servers: server.url, auth: { token: 'wrong' } }).connect({ agentId: 'tok', token: 't' });
      await expect(bad.join(joinRequest('tok'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      bad.close();
      await listener.close();
    } finally {
      await server.stop(true);
    }
  });
});

describe.skipIf(!natsServerPath() || !haveOpenssl)('NATS over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-nats-tls-'));
  const pem = (name: string): string => join(dir, name);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const makePki = (prefix: string): void => makeTestPki(dir, prefix, 'nats-test-ca');

  beforeAll(() => {
    makePki('');
    makePki('other-');
  });

  it('serves agents over mutual TLS and refuses plaintext, unknown CAs and clients without a certificate', async () => {
    const server = await startNatsServer({
      config: `tls { cert_file: ${JSON.stringify(pem('server.crt'))}, key_file: ${JSON.stringify(pem('server.key'))}, ca_file: ${JSON.stringify(pem('ca.crt'))}, verify: true, timeout: 2 }`,
    });
    const tls = { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') };
    try {
      const transport = new NatsTransport({ jobId: JOB, servers: server.url, tls });
      const listener = await transport.listen(handler(undefined));
      const client = transport.connect({ agentId: 'tls-agent', token: 't' });
      expect((await client.join(joinRequest('tls-agent'))).jobId).toBe(JOB);
      client.close();
      const attempt = async (options: ConstructorParameters<typeof NatsTransport>[0]): Promise<string> => {
        const c = new NatsTransport(options).connect({ agentId: 'tls-agent', token: 't' });
        try {
          await c.join(joinRequest('tls-agent'));
          return 'OK';
        } catch (err) {
          return (err as TransportError).code;
        } finally {
          c.close();
        }
      };
      expect(await attempt({ jobId: JOB, servers: server.url })).toBe('UNAVAILABLE'); // plaintext
      expect(await attempt({ jobId: JOB, servers: server.url, tls: { ca: pem('ca.crt') } })).toBe('UNAVAILABLE'); // no client certificate
      expect(await attempt({ jobId: JOB, servers: server.url, tls: { ...tls, ca: pem('other-ca.crt') } })).toBe('UNAVAILABLE'); // server not trusted
      expect(await attempt({ jobId: JOB, servers: server.url, tls: { ca: pem('ca.crt'), cert: pem('other-client.crt'), key: pem('other-client.key') } })).toBe('UNAVAILABLE');
      await listener.close();
    } finally {
      await server.stop(true);
    }
  });
});
