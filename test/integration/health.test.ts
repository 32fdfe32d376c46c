/**
 * One health, read everywhere: the coordinator's ServiceHealth (driven by its lifecycle) is what the gRPC
 * health service, the NATS health subject and the operator server's /readyz answer — NOT_SERVING before
 * listen(), SERVING while it serves, NOT_SERVING from the start of close(), and any change is seen by all
 * three at once (and by a grpc.health.v1 Watch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import * as grpc from '@grpc/grpc-js';
import { Coordinator } from '../../coordinator/index.js';
import { serveDashboard, type DashboardServer } from '../../coordinator/dashboard/server.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, NatsTransport, ServiceHealth, checkHealth, checkNatsHealth, loadProtocol } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, paddingOf, type Fixture } from './fleet-fixture.js';

const readyz = async (server: DashboardServer): Promise<number> => (await fetch(`${server.url}/readyz`)).status;

function coordinatorOn(f: Fixture, transport: GrpcTransport | NatsTransport, jobId: string): Coordinator {
  return new Coordinator({
    log: UpdateLog.inMemory(logHeader(f.prepared, jobId)),
    baseSlab: f.prepared.slab,
    padding: paddingOf(f.prepared),
    engine: noise,
    transport,
    options: { jobId, rounds: 1, strategy: { agentsPerRound: 1, seedsPerAgent: 1 } },
  });
}

describe('the coordinator health', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  it('rejects a status that is not one', () => {
    expect(() => new ServiceHealth('MAYBE' as never)).toThrow(/health initial: must be SERVING or NOT_SERVING/);
    const health = new ServiceHealth();
    expect(() => health.set('up' as never)).toThrow(/health status/);
    expect(health.status).toBe('NOT_SERVING');
  });

  it('is what gRPC health (Check and Watch) and /readyz answer through the coordinator lifecycle', async () => {
    const coordinator = coordinatorOn(f, new GrpcTransport({ address: '127.0.0.1:0' }), 'health-grpc');
    const dashboard = await serveDashboard({ port: 0, host: '127.0.0.1', health: coordinator.health });
    try {
      expect(coordinator.health.status).toBe('NOT_SERVING');
      expect(await readyz(dashboard)).toBe(503);
      const address = await coordinator.listen();
      expect(await checkHealth(address)).toBe('SERVING');
      expect(await readyz(dashboard)).toBe(200);

      // A watcher hears every change the coordinator's health goes through.
      const protocol = loadProtocol();
      const client = new protocol.health(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientReadableStream<{ status: string }>>;
      const heard: string[] = [];
      const watch = client.Watch!({ service: '' });
      watch.on('data', (m: { status: string }) => heard.push(m.status));
      watch.on('error', () => undefined);
      const deadline = Date.now() + 20_000;
      const waitFor = async (n: number) => {
        while (heard.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(1);
      coordinator.health.set('NOT_SERVING');
      await waitFor(2);
      expect(await checkHealth(address)).toBe('NOT_SERVING');
      expect(await readyz(dashboard)).toBe(503);
      coordinator.health.set('SERVING');
      await waitFor(3);
      expect(heard).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      watch.cancel();
      client.close();

      await coordinator.close();
      expect(coordinator.health.status).toBe('NOT_SERVING');
      expect(await readyz(dashboard)).toBe(503);
    } finally {
      await dashboard.close();
      await coordinator.close();
    }
  });

  describe.skipIf(!natsServerPath())('over NATS', () => {
    let server: NatsServer;
    let nc: NatsConnection;
    beforeAll(async () => {
      server = await startNatsServer();
      nc = await connect({ servers: server.url });
    });
    afterAll(async () => {
      await nc?.close();
      await server?.stop(true);
    });

    it('is what the NATS health subject answers', async () => {
      const jobId = 'health-nats';
      const coordinator = coordinatorOn(f, new NatsTransport({ jobId, servers: server.url }), jobId);
      try {
        await coordinator.listen();
        expect(await checkNatsHealth(nc, jobId)).toBe('SERVING');
        coordinator.health.set('NOT_SERVING');
        expect(await checkNatsHealth(nc, jobId)).toBe('NOT_SERVING');
        coordinator.health.set('SERVING');
        expect(await checkNatsHealth(nc, jobId)).toBe('SERVING');
      } finally {
        await coordinator.close();
      }
      expect(coordinator.health.status).toBe('NOT_SERVING');
    });
  });
});
