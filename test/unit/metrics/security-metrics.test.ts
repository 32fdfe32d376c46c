/**
 * What the signatures and MACs turn away shows in the coordinator's metrics as plain totals: foreign records on
 * a JetStream log (mezo_log_ignored_records_total) and forged or replayed session messages from agents
 * (mezo_transport_forged_messages_total). Both against a real nats-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { Coordinator } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { LogSigner, openJetStreamLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, NatsTransport, jobSubjects } from '../../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';

const base = new Float32Array(64).map((_, i) => i / 64);
const baseSha256 = slabSha256(base);
const header = (jobId: string) => ({ jobId, baseSha256, distribution: 'gaussian' as const });

/** The value of an unlabelled sample in a Prometheus text scrape (undefined when absent). */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(5);
  }
}

describe.skipIf(!natsServerPath())('security metrics', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc.close();
    await server.stop(true);
  });

  it('counts the foreign records a JetStream log left out', async () => {
    const signer = LogSigner.generate();
    const subjects = jobSubjects('metrics-ignored');
    const first = await openJetStreamLog({ connection: nc, header: header('metrics-ignored'), signer });
    await first.append({ round: 0, lr: 1e-3, terms: [{ seed: 1n, coeff: 1e-3 }] });
    await first.close();
    const js = nc.jetstream();
    await js.publish(subjects.logEntry, Buffer.alloc(64, 7));
    await js.publish(subjects.logEntry, Buffer.alloc(90, 3));
    const log = await openJetStreamLog({ connection: nc, header: header('metrics-ignored'), signer });
    expect(log.ignoredRecords).toBe(2);
    const coordinator = new Coordinator({ log, baseSlab: base, engine: noise, transport: new InMemoryTransport(), options: { jobId: 'metrics-ignored', rounds: 1 } });
    const metrics = new CoordinatorMetrics(coordinator);
    expect(sample(await metrics.registry.metrics(), 'mezo_log_ignored_records_total')).toBe(2);
    await coordinator.close();
  });

  it('counts forged and replayed session messages, and only them', async () => {
    const jobId = 'metrics-forged';
    const coordinator = new Coordinator({
      log: await openJetStreamLog({ connection: nc, header: header(jobId), signer: LogSigner.generate() }),
      baseSlab: base,
      engine: noise,
      transport: new NatsTransport({ jobId, connection: nc }),
      options: { jobId, rounds: 1, heartbeatMs: 60_000, tokens: { a1: 'secret-one' } },
    });
    const metrics = new CoordinatorMetrics(coordinator);
    await coordinator.listen();
    expect(sample(await metrics.registry.metrics(), 'mezo_transport_forged_messages_total')).toBe(0);

    const client = new NatsTransport({ jobId, servers: server.url }).connect({ agentId: 'a1', token: 'secret-one' });
    await client.join({ agentId: 'a1', token: 'secret-one', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
    const session = client.session({ message: () => undefined, invalid: () => undefined, closed: () => undefined });
    await until(() => coordinator.agentStatus('a1')?.connected === true, 'the session');
    const up = jobSubjects(jobId).up('a1', (session as unknown as { id: string }).id);
    const forged = natsHeaders();
    forged.set('Mezo-Seq', '7');
    forged.set('Mezo-Mac', 'A'.repeat(43));
    nc.publish(up, Buffer.from([0x12, 0x00]), { headers: forged });
    nc.publish(up, Buffer.from([0x12, 0x00]));
    await nc.flush();
    await until(() => coordinator.forgedMessages() === 2, 'the coordinator to drop both');
    // The agent's own message is no forgery.
    const before = coordinator.traffic().get('a1')!.bytesUp;
    session.send({ kind: 'pong', nonce: 1 });
    await until(() => coordinator.traffic().get('a1')!.bytesUp > before, 'the pong');
    expect(coordinator.forgedMessages()).toBe(2);
    expect(sample(await metrics.registry.metrics(), 'mezo_transport_forged_messages_total')).toBe(2);
    client.close();
    await coordinator.close();
  });
});
