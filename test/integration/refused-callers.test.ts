/**
 * Refused callers cost nothing lasting: a flood of Joins with made-up ids and bad tokens leaves no traffic
 * counters, agent records or per-caller entries behind (over gRPC and over NATS), and failed authentication is
 * rate-limited per peer address with a bounded table.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import type { Coordinator } from '../../coordinator/index.js';
import { CoordinatorMetrics } from '../../coordinator/metrics.js';
import { logger } from '../../shared/logger.js';
import { GrpcTransport, NatsTransport, type CoordinatorClient, type JoinRequest } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { codeOf, fixture, startCoordinator, type Fixture } from './fleet-fixture.js';

const rounds = { rounds: 1, deadlineMs: 10_000, heartbeatMs: 200, batchSize: 16, strategy: { agentsPerRound: 1, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 } };
const FLOOD = 1500;

function joinRequest(f: Fixture, agentId: string, token: string): JoinRequest {
  return { agentId, token, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 };
}

/** FLOOD Joins with distinct made-up ids and wrong tokens, 50 at a time; the status codes they got, counted. */
async function flood(connectAs: (agentId: string) => CoordinatorClient, f: Fixture): Promise<Map<string, number>> {
  const codes = new Map<string, number>();
  for (let start = 0; start < FLOOD; start += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, FLOOD - start) }, async (_, i) => {
        const id = `forged-${start + i}`;
        const client = connectAs(id);
        const code = await codeOf(client.join(joinRequest(f, id, `guess-${start + i}`)));
        client.close();
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }),
    );
  }
  return codes;
}

describe('refused callers over gRPC', () => {
  let f: Fixture;
  let coordinator: Coordinator;
  beforeAll(async () => {
    f = await fixture();
    coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), {
      ...rounds,
      jobId: 'refused-grpc',
      tokens: { 'dev-0': 'secret-0', 'dev-1': 'secret-1' },
      // A refill far slower than any test: the burst is all a peer gets.
      authFailureLimit: { perSecond: 0.001, burst: 40, maxPeers: 8 },
    });
  });
  afterAll(() => coordinator.close());

  it('keeps no counters, records or log state per made-up id, and limits failures from one address', async () => {
    const transport = new GrpcTransport({ address: coordinator.address!, callTimeoutMs: 10_000 });
    const honest = transport.connect({ agentId: 'dev-0', token: 'secret-0' });
    expect((await honest.join(joinRequest(f, 'dev-0', 'secret-0'))).jobId).toBe('refused-grpc');

    // Every log line the process writes during the flood, at info level.
    const lines: string[] = [];
    const write = fs.writeSync;
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: unknown, ...rest: unknown[]) => {
      if (fd === 2) lines.push(String(data));
      return (write as (...args: unknown[]) => number)(fd, data, ...rest);
    }) as typeof fs.writeSync);
    const level = logger.level;
    logger.level = 'info';
    let codes: Map<string, number>;
    try {
      codes = await flood((id) => transport.connect({ agentId: id, token: 'nope' }), f);
    } finally {
      logger.level = level;
      spy.mockRestore();
    }
    // No log line per refused caller.
    expect(lines.filter((l) => l.includes('forged-'))).toEqual([]);
    // Unlisted ids are refused; once the address has spent its failure budget, calls are refused unheard.
    expect([...codes.keys()].sort()).toEqual(['PERMISSION_DENIED', 'RESOURCE_EXHAUSTED']);
    const auth = coordinator.authFailures();
    expect(auth.failed + auth.limited).toBe(FLOOD);
    expect(auth.failed).toBeLessThanOrEqual(41);
    expect(codes.get('RESOURCE_EXHAUSTED')).toBe(auth.limited);
    expect(auth.peersTracked).toBe(1);
    expect(auth.refusedCalls).toBe(FLOOD);

    // Nothing per caller: the one honest agent is all the coordinator and its transport know.
    expect([...coordinator.traffic().keys()]).toEqual(['dev-0']);
    expect(coordinator.agentStatuses().map((a) => a.id)).toEqual(['dev-0']);
    // Metrics: the refusals as plain totals, no label naming a caller.
    const scrape = await new CoordinatorMetrics(coordinator).registry.metrics();
    expect(scrape).not.toContain('forged-');
    expect(scrape).toMatch(new RegExp(`^mezo_auth_failures_total ${auth.failed}$`, 'm'));
    expect(scrape).toMatch(new RegExp(`^mezo_auth_limited_total ${auth.limited}$`, 'm'));
    honest.close();
  });
});

describe.skipIf(!natsServerPath())('refused callers over NATS', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;
  let coordinator: Coordinator;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    f = await fixture();
    coordinator = await startCoordinator(f, new NatsTransport({ jobId: 'refused-nats', connection: nc }), {
      ...rounds,
      jobId: 'refused-nats',
      token: 'shared-secret',
      authFailureLimit: { perSecond: 0.001, burst: 3, maxPeers: 8 },
    });
  });
  afterAll(async () => {
    await coordinator.close();
    await nc.close();
    await server.stop(true);
  });

  it('keeps no traffic counters per made-up id, and the failure table stays within its bound', async () => {
    const transport = new NatsTransport({ jobId: 'refused-nats', connection: nc, callTimeoutMs: 10_000 });
    const honest = transport.connect({ agentId: 'dev-0', token: 'shared-secret' });
    expect((await honest.join(joinRequest(f, 'dev-0', 'shared-secret'))).jobId).toBe('refused-nats');
    const codes = await flood((id) => transport.connect({ agentId: id, token: 'wrong' }), f);
    // NATS does not reveal a sender's address: each claimed id is its own peer, in a table of at most 8.
    expect([...codes.keys()]).toEqual(['UNAUTHENTICATED']);
    const auth = coordinator.authFailures();
    expect(auth.failed).toBe(FLOOD);
    expect(auth.peersTracked).toBe(8);
    expect([...coordinator.traffic().keys()]).toEqual(['dev-0']);
    expect(coordinator.agentStatuses().map((a) => a.id)).toEqual(['dev-0']);

    // One id guessed at over and over: its budget of 3 failures, then refused unheard, whatever the token.
    const guesser = transport.connect({ agentId: 'dev-1', token: 'x' });
    const guesses = [];
    for (let i = 0; i < 6; i++) guesses.push(await codeOf(guesser.join(joinRequest(f, 'dev-1', `guess-${i}`))));
    expect(guesses).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
    expect(await codeOf(guesser.join(joinRequest(f, 'dev-1', 'shared-secret')))).toBe('RESOURCE_EXHAUSTED');
    guesser.close();
    honest.close();
  });
});
