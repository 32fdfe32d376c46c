/**
 * The update log as a JetStream stream on a real nats-server: appends, reopen with full verification, a
 * duplicated publish, two writers, a foreign header, corrupt records, and durability across a server restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import {
  JetStreamLogStorage,
  LogConflictError,
  LogCorruptError,
  UpdateLog,
  encodeEntryPayload,
  genesisHash,
  hashPayload,
  openJetStreamLog,
  readLogStream,
  type LogHeaderInput,
} from '../../../shared/log/index.js';
import { jobSubjects } from '../../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';

const headerFor = (jobId: string): LogHeaderInput => ({ jobId, baseSha256: 'ab'.repeat(32), distribution: 'gaussian' });
const termsFor = (round: number) => [
  { seed: BigInt(round) * 1000n + 1n, coeff: -1e-3 * (round + 1) },
  { seed: BigInt(round) * 1000n + 2n, coeff: 5e-4 },
];

describe.skipIf(!natsServerPath())('JetStream update log', () => {
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

  it('appends after the acknowledgement, reopens with the whole chain verified, and matches the file log bit for bit', async () => {
    const header = headerFor('js-append');
    const log = await openJetStreamLog({ connection: nc, header });
    expect(log.version).toBe(0);
    expect(log.headHash).toBe(genesisHash(log.header));
    for (let round = 0; round < 5; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    const memory = UpdateLog.inMemory(header);
    for (let round = 0; round < 5; round++) await memory.append({ round, lr: 1e-3, terms: termsFor(round) });
    expect(log.headHash).toBe(memory.headHash);
    await log.close();

    // A second connection (a restarted coordinator) reads everything back.
    const other = await connect({ servers: server.url });
    const reopened = await openJetStreamLog({ connection: other, header });
    expect(reopened.entries()).toEqual(memory.entries());
    await reopened.append({ round: 5, lr: 1e-3, terms: termsFor(5) });
    expect(reopened.version).toBe(6);
    // The stream: header at sequence 1, entry v at v + 1.
    const jsm = await other.jetstreamManager();
    const info = await jsm.streams.info(jobSubjects('js-append').stream);
    expect(info.state).toMatchObject({ first_seq: 1, last_seq: 7, messages: 7 });
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true, allow_direct: true, num_replicas: 1 });
    // Agents read it with direct gets.
    const page = await readLogStream(other, jobSubjects('js-append'), 2, 0);
    expect(page.head).toBe(6);
    expect(page.entries).toEqual(reopened.entries(2));
    expect((await readLogStream(other, jobSubjects('js-append'), 0, 3, { limit: 2 })).entries.map((e) => e.version)).toEqual([1, 2]);
    await reopened.close();
    await other.close();
  });

  it('stores a duplicated publish once, and fences out a second writer', async () => {
    const header = headerFor('js-writers');
    const a = await openJetStreamLog({ connection: nc, header });
    for (let round = 0; round < 3; round++) await a.append({ round, lr: 1e-3, terms: termsFor(round) });
    const otherNc = await connect({ servers: server.url });
    const b = await openJetStreamLog({ connection: otherNc, header });
    expect(b.version).toBe(3);

    await a.append({ round: 3, lr: 1e-3, terms: termsFor(3) });
    // B still thinks the log ends at 3: its entry 4 would fork the chain, and is refused.
    await expect(b.append({ round: 3, lr: 2e-3, terms: termsFor(99) })).rejects.toBeInstanceOf(LogConflictError);
    expect(b.version).toBe(3);

    // The same record published twice (an acknowledgement lost, the publish retried) is stored once.
    const storage = new JetStreamLogStorage(nc, jobSubjects('js-writers'), 5000);
    const last = a.entries(3)[0]!;
    const { hash, ...unsigned } = last;
    await expect(storage.appendRecord(last, encodeEntryPayload(unsigned))).resolves.toBeUndefined();
    expect(hashPayload(encodeEntryPayload(unsigned))).toBe(hash);
    const jsm = await nc.jetstreamManager();
    expect((await jsm.streams.info(jobSubjects('js-writers').stream)).state.last_seq).toBe(5);

    const reopened = await openJetStreamLog({ connection: otherNc, header });
    expect(reopened.entries()).toEqual(a.entries());
    await Promise.all([a.close(), b.close(), reopened.close()]);
    await otherNc.close();
  });

  it('refuses a stream that belongs to another job header', async () => {
    const log = await openJetStreamLog({ connection: nc, header: headerFor('js-header') });
    await log.append({ round: 0, lr: 1e-3, terms: termsFor(0) });
    await log.close();
    await expect(openJetStreamLog({ connection: nc, header: { ...headerFor('js-header'), baseSha256: 'cd'.repeat(32) } })).rejects.toThrow(
      /log belongs to .*"baseSha256":"abab/,
    );
    await expect(openJetStreamLog({ connection: nc, header: { ...headerFor('js-header'), distribution: 'rademacher' } })).rejects.toBeInstanceOf(LogCorruptError);
  });

  it('refuses to open a stream with a corrupt record, naming its sequence, and changes nothing', async () => {
    const subjects = jobSubjects('js-corrupt');
    const log = await openJetStreamLog({ connection: nc, header: headerFor('js-corrupt') });
    for (let round = 0; round < 3; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    await log.close();
    // A record whose checksum fails (bits flipped in the payload), written around the log's own checks.
    const js = nc.jetstream();
    const bad = Buffer.alloc(100, 7);
    await js.publish(subjects.logEntry, bad);
    await expect(openJetStreamLog({ connection: nc, header: headerFor('js-corrupt') })).rejects.toThrow(/sequence 5: entry 4 fails its checksum/);
    const jsm = await nc.jetstreamManager();
    expect((await jsm.streams.info(subjects.stream)).state.messages).toBe(5);

    // A well-formed record that does not chain (another job's entry 1) is caught as a broken chain.
    const subjects2 = jobSubjects('js-chain');
    const log2 = await openJetStreamLog({ connection: nc, header: headerFor('js-chain') });
    await log2.append({ round: 0, lr: 1e-3, terms: termsFor(0) });
    await log2.close();
    const foreign = UpdateLog.inMemory(headerFor('js-other'));
    await foreign.append({ round: 0, lr: 1e-3, terms: termsFor(0) });
    await foreign.append({ round: 1, lr: 1e-3, terms: termsFor(1) });
    const entry = foreign.entries(1)[0]!;
    const { hash, ...unsigned } = entry;
    await js.publish(subjects2.logEntry, Buffer.concat([encodeEntryPayload(unsigned), Buffer.from(hash, 'hex')]));
    await expect(openJetStreamLog({ connection: nc, header: headerFor('js-chain') })).rejects.toThrow(/sequence 3: hash chain broken at entry 2/);
    // Agents reading it directly see the damage too.
    await expect(readLogStream(nc, subjects2, 0, 0)).rejects.toBeInstanceOf(LogCorruptError);
  });

  it('keeps the log across a server restart (file storage)', async () => {
    const header = headerFor('js-durable');
    const log = await openJetStreamLog({ connection: nc, header });
    for (let round = 0; round < 4; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    const head = log.headHash;
    await log.close();
    await nc.close();
    await server.stop();
    server = await startNatsServer({ storeDir: server.storeDir, port: server.port });
    nc = await connect({ servers: server.url });
    const reopened = await openJetStreamLog({ connection: nc, header });
    expect(reopened.version).toBe(4);
    expect(reopened.headHash).toBe(head);
    await reopened.close();
  });
});
