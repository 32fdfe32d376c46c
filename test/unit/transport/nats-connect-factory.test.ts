/**
 * The NATS transport opens its own connections through the injected `connect` function (the seam a WebSocket
 * link plugs into): the coordinator's and each agent's, with the options connect.ts derives (name, inbox
 * prefix, no reconnect for an agent), and a join and a session run over connections it returned. A connect
 * function that fails reaches the caller as a TransportError; one that is not a function is refused up front.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { NatsTransport, TransportError, connectNats, defaultNatsConnect, type CoordinatorHandler, type NatsConnectFn } from '../../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const JOB = 'nats-connect-factory';
const sha = 'ef'.repeat(32);

function recordingConnect(): { connect: NatsConnectFn; calls: ConnectionOptions[]; opened: NatsConnection[] } {
  const calls: ConnectionOptions[] = [];
  const opened: NatsConnection[] = [];
  return {
    calls,
    opened,
    connect: async (options) => {
      calls.push(options);
      const nc = await defaultNatsConnect(options);
      opened.push(nc);
      return nc;
    },
  };
}

describe.skipIf(!natsServerPath())('NatsTransport with an injected connect function', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop(true);
  });

  it('opens the coordinator and agent connections through it and runs the protocol over them', async () => {
    const recorder = recordingConnect();
    const transport = new NatsTransport({ jobId: JOB, servers: server.url, connect: recorder.connect, livenessMs: 60_000 });
    const received: string[] = [];
    const handler: CoordinatorHandler = {
      join: async (request) => joinAcceptedFixture(JOB, request.baseSha256),
      fetchLog: async () => ({ entries: [], headVersion: 0 }),
      fetchSnapshot: async () => {
        throw new TransportError('NOT_FOUND', 'no snapshot');
      },
      session: (session) => {
        session.listen({ message: (m) => received.push(m.kind), invalid: () => undefined, closed: () => undefined });
        session.send({ kind: 'ping', nonce: 9 });
      },
    };
    const listener = await transport.listen(handler);
    expect(recorder.calls).toHaveLength(1);
    expect(recorder.calls[0]!.name).toBe(`mezo-coordinator ${JOB}`);

    const client = transport.connect({ agentId: 'a.1', token: '' });
    const accepted = await client.join({ agentId: 'a.1', token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: sha, versionHeld: 0 });
    expect(accepted.jobId).toBe(JOB);
    expect(recorder.calls).toHaveLength(2);
    expect(recorder.calls[1]).toMatchObject({ name: 'mezo-agent a.1', inboxPrefix: `_INBOX.${JOB.replaceAll('.', '~')}.a~1`, reconnect: false });

    const heard: string[] = [];
    const session = client.session({ message: (m) => heard.push(m.kind), invalid: () => undefined, closed: () => undefined });
    session.send({ kind: 'pong', nonce: 9 });
    const deadline = Date.now() + 20_000;
    while ((heard.length === 0 || received.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(heard).toEqual(['ping']);
    expect(received).toEqual(['pong']);

    client.close();
    await listener.close();
    // Both connections it opened were the transport's own, closed with the listener and the client.
    for (const nc of recorder.opened) await nc.closed();
    expect(recorder.opened.every((nc) => nc.isClosed())).toBe(true);
  });

  it('reports a failing connect function as UNAVAILABLE naming the server, and refuses one that is not a function', async () => {
    const failing: NatsConnectFn = async () => {
      throw new Error('socket refused by test');
    };
    const err = await connectNats({ servers: 'ws://127.0.0.1:9' }, failing).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', message: 'cannot connect to NATS at ws://127.0.0.1:9: socket refused by test' });

    const client = new NatsTransport({ jobId: JOB, servers: server.url, connect: failing }).connect({ agentId: 'a2', token: '' });
    await expect(client.fetchLog({ fromVersion: 0, toVersion: 0 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    client.close();

    expect(() => new NatsTransport({ jobId: JOB, servers: server.url, connect: 'nats' as unknown as NatsConnectFn })).toThrow(/connect must be a function/);
  });
});
