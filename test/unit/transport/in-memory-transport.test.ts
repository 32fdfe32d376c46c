import { describe, expect, it } from 'vitest';
import {
  InMemoryTransport,
  TransportError,
  type AgentMessage,
  type CoordinatorHandler,
  type ServerSession,
} from '../../../shared/transport/index.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const sha = 'cd'.repeat(32);
const accepted = joinAcceptedFixture('job', sha);

function handler(onSession: (s: ServerSession) => void): CoordinatorHandler {
  return {
    join: async (request) => {
      if (request.token !== 'ok') throw new TransportError('UNAUTHENTICATED', 'bad token');
      return accepted;
    },
    fetchLog: async () => ({ entries: [], headVersion: 0 }),
    fetchSnapshot: async () => {
      throw new TransportError('NOT_FOUND', 'no snapshot');
    },
    session: onSession,
  };
}

describe('InMemoryTransport', () => {
  it('validates on receipt, keeps order, and carries status codes', async () => {
    const transport = new InMemoryTransport({ maxMessageBytes: 2000 });
    const received: AgentMessage[] = [];
    const invalid: string[] = [];
    let server: ServerSession | undefined;
    const listener = await transport.listen(
      handler((s) => {
        server = s;
        s.listen({ message: (m) => received.push(m), invalid: (e) => invalid.push(e.message), closed: () => undefined });
      }),
    );
    const client = transport.connect({ agentId: 'agent-1', token: 'ok' });
    // Through protobuf, as over gRPC: a field left unset comes back at its default.
    await expect(client.join({ agentId: 'agent-1', token: 'ok', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: sha, versionHeld: 0 })).resolves.toEqual({ ...accepted, rebaseVersion: 0 });
    await expect(
      transport.connect({ agentId: 'agent-1', token: 'no' }).join({ agentId: 'agent-1', token: 'no', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: sha, versionHeld: 0 }),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    const down: string[] = [];
    let closedWith: TransportError | undefined;
    const session = client.session({ message: (m) => down.push(m.kind), invalid: () => undefined, closed: (e) => (closedWith = e) });
    session.send({ kind: 'pong', nonce: 1 });
    session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: sha } });
    session.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: [1n], g: [Number.NaN], lossPlus: [1], lossMinus: [1], sampleCount: 1 } });
    session.send({ kind: 'pong', nonce: 2 });
    await new Promise((r) => setTimeout(r, 20));
    expect(server!.info.agentId).toBe('agent-1');
    expect(received.map((m) => m.kind)).toEqual(['pong', 'heartbeat', 'pong']);
    expect(invalid).toEqual([expect.stringContaining('result.g[0]')]);

    server!.send({ kind: 'ping', nonce: 9 });
    // Oversized: the stream ends with RESOURCE_EXHAUSTED, as gRPC would end it.
    session.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: Array.from({ length: 1000 }, (_, i) => BigInt(i) << 40n), g: [], lossPlus: [], lossMinus: [], sampleCount: 1 } });
    await new Promise((r) => setTimeout(r, 20));
    expect(down).toEqual(['ping']);
    expect(closedWith?.code).toBe('RESOURCE_EXHAUSTED');

    await listener.close();
    await expect(client.fetchLog({ fromVersion: 0, toVersion: 0 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('refuses a session the handler rejects, with the handler status', async () => {
    const transport = new InMemoryTransport();
    await transport.listen(
      handler(() => {
        throw new TransportError('FAILED_PRECONDITION', 'join first');
      }),
    );
    const closed = await new Promise<TransportError | undefined>((resolve) =>
      transport.connect({ agentId: 'x', token: '' }).session({ message: () => undefined, invalid: () => undefined, closed: resolve }),
    );
    expect(closed).toMatchObject({ code: 'FAILED_PRECONDITION', message: 'join first' });
  });
});
