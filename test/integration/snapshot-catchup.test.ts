/**
 * Catch-up by snapshot over gRPC on loopback: an agent far behind downloads the newest snapshot (chunked,
 * SHA-256 checked) and replays the rest; one near the head replays the log; each path is measured on the wire
 * (protobuf bytes + gRPC frame per message) and is the smaller one. A tampered snapshot is refused and the agent
 * falls back to the log; FetchSnapshot enforces credentials; a bounded history sends old agents to the snapshot.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import {
  GRPC_FRAME_BYTES,
  GrpcTransport,
  encodeFetchLogResponse,
  encodeSnapshotChunk,
  loadProtocol,
  type AgentCredentials,
  type CoordinatorClient,
  type CoordinatorHandler,
  type Listener,
  type SnapshotChunk,
  type Transport,
} from '../../shared/transport/index.js';
import { fixture, logHeader, startCoordinator, until, codeOf, type Fixture } from './fleet-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-snapshot-catchup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes that crossed the wire per method, counted from the protobuf encoding of what the client received. */
interface Meter {
  log: number;
  snapshot: number;
}

/** GrpcTransport, metered; `tamper` flips one byte of every snapshot chunk on its way in. */
class MeteredTransport implements Transport {
  readonly meter: Meter = { log: 0, snapshot: 0 };
  private readonly inner: GrpcTransport;

  constructor(address: string, private readonly tamper = false) {
    this.inner = new GrpcTransport({ address });
  }

  listen(handler: CoordinatorHandler): Promise<Listener> {
    return this.inner.listen(handler);
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const client = this.inner.connect(credentials);
    const service = loadProtocol().coordinator.service;
    const meter = this.meter;
    const tamper = this.tamper;
    return {
      ...client,
      join: (request) => client.join(request),
      session: (listener) => client.session(listener),
      close: () => client.close(),
      fetchLog: async (request) => {
        const page = await client.fetchLog(request);
        meter.log += service.FetchLog!.responseSerialize(encodeFetchLogResponse(page)).length + GRPC_FRAME_BYTES;
        return page;
      },
      fetchSnapshot: (request) =>
        (async function* (): AsyncGenerator<SnapshotChunk> {
          for await (const chunk of client.fetchSnapshot(request)) {
            meter.snapshot += service.FetchSnapshot!.responseSerialize(encodeSnapshotChunk(chunk)).length + GRPC_FRAME_BYTES;
            if (tamper) {
              const data = Uint8Array.from(chunk.data);
              data[0]! ^= 0x40;
              yield { ...chunk, data };
            } else yield chunk;
          }
        })(),
    };
  }
}

function agentOn(f: Fixture, transport: Transport, index: number, token = ''): Agent {
  return new Agent({
    agentId: `agent-${index}`,
    token,
    transport,
    prepared: f.prepared,
    createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
    data: f.task.agents[index % f.task.agents.length]!,
    dataSeed: index,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
  });
}

/** Every FetchLog page from `from` to the head, through a metered client: the bytes the log path would move. */
async function meterLogFrom(address: string, agentId: string, from: number, f: Fixture): Promise<number> {
  const transport = new MeteredTransport(address);
  const client = transport.connect({ agentId, token: '' });
  try {
    const accepted = await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 });
    for (let v = from; v < accepted.currentVersion; ) v = (await client.fetchLog({ fromVersion: v, toVersion: 0 })).entries.at(-1)!.version;
    return transport.meter.log;
  } finally {
    client.close();
  }
}

async function meterSnapshot(address: string, agentId: string, f: Fixture): Promise<number> {
  const transport = new MeteredTransport(address);
  const client = transport.connect({ agentId, token: '' });
  try {
    await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 });
    for await (const chunk of client.fetchSnapshot({ version: 0 })) expect(chunk.data.length).toBeLessThanOrEqual(128 * 1024);
    return transport.meter.snapshot;
  } finally {
    client.close();
  }
}

const drain = async (chunks: AsyncIterable<SnapshotChunk>): Promise<void> => {
  for await (const _ of chunks) void _;
};

/** Log entries already in the file before the fleet starts: a long history (no terms, so replay is cheap). */
const HISTORY = 3200;
const ROUNDS = HISTORY + 4;
const options = {
  rounds: ROUNDS,
  deadlineMs: 10_000,
  heartbeatMs: 100,
  batchSize: 32,
  strategy: { agentsPerRound: 2, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 11 },
};

describe('catch-up by snapshot', () => {
  let f: Fixture;
  const logPath = join(dir, 'long', 'job.log');
  const snapshotDir = join(dir, 'long', 'snapshots');

  beforeAll(async () => {
    f = await fixture();
    const log = await UpdateLog.open(logPath, logHeader(f.prepared));
    for (let round = 0; round < HISTORY; round++) await log.append({ round, lr: 0, terms: [] });
    await log.close();
  });

  it('a late joiner far behind downloads the snapshot, verifies, loads and replays; a tampered one is refused', async () => {
    const coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), options, logPath, {
      snapshots: { dir: snapshotDir, every: 2, chunkBytes: 128 * 1024 },
    });
    await coordinator.snapshotsWritten();
    expect(coordinator.fetchableSnapshots()).toEqual([HISTORY]); // written at start: the log was long, no snapshot
    const address = coordinator.address!;

    const fleet = [0, 1].map((i) => agentOn(f, new MeteredTransport(address), i));
    const runs = fleet.map((a) => a.run());
    await coordinator.run();
    await coordinator.snapshotsWritten();
    expect(coordinator.fetchableSnapshots()).toEqual([ROUNDS - 2, ROUNDS]);
    await until(() => fleet.every((a) => a.state.version === ROUNDS), 20_000, 'fleet at the head');

    // The late joiner: version 0, 3,204 entries behind, a snapshot at the head.
    const lateTransport = new MeteredTransport(address);
    const late = agentOn(f, lateTransport, 2);
    const lateRun = late.run();
    await until(() => late.state.version === ROUNDS, 20_000, 'late joiner at the head');
    expect(late.state.lastCatchUp).toMatchObject({ path: 'snapshot', from: 0, to: ROUNDS, snapshotVersion: ROUNDS });
    expect(await late.backend!.sha256()).toBe(coordinator.weightsSha256());
    expect(late.state.headHash).toBe(coordinator.log.headHash);

    // Bytes: what the snapshot path moved, against what the log path moves for the same catch-up.
    const snapshotPath = lateTransport.meter.snapshot + lateTransport.meter.log;
    const logPath_ = await meterLogFrom(address, 'meter-log', 0, f);
    expect(snapshotPath).toBeLessThan(logPath_);
    expect(lateTransport.meter.snapshot).toBeGreaterThan(f.prepared.slab.length * 4);
    // The coordinator's reported sizes are those measured.
    expect(late.state.lastCatchUp!.snapshotBytes).toBe(snapshotPath);
    expect(late.state.lastCatchUp!.logBytes).toBe(logPath_);

    // A tampered download: refused (hash), nothing loaded; the agent falls back to the log and still converges.
    const tampered = agentOn(f, new MeteredTransport(address, true), 3);
    const tamperedRun = tampered.run();
    await until(() => tampered.state.version === ROUNDS, 30_000, 'tampered agent at the head');
    expect(tampered.state.snapshotsRejected).toBe(1);
    expect(tampered.state.lastCatchUp).toMatchObject({ path: 'log', from: 0 });
    expect(await tampered.backend!.sha256()).toBe(coordinator.weightsSha256());

    for (const agent of [...fleet, late, tampered]) await agent.close();
    await Promise.all([...runs, lateRun, tamperedRun]);
    await coordinator.close();
  });

  it('bounded history: FetchLog refuses what only a snapshot serves; an old agent takes the snapshot; credentials hold', async () => {
    const coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), options, logPath, {
      snapshots: { dir: snapshotDir, every: 2, chunkBytes: 128 * 1024, keepVersions: 1 },
    });
    const address = coordinator.address!;
    expect(coordinator.fetchableSnapshots()).toEqual([ROUNDS]);
    expect(coordinator.logFloor()).toBe(ROUNDS - 1);

    const client = new GrpcTransport({ address }).connect({ agentId: 'probe', token: 'right' });
    const accepted = await client.join({ agentId: 'probe', token: 'right', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 });
    expect(accepted).toMatchObject({ logFloor: ROUNDS - 1, snapshotVersion: ROUNDS, currentVersion: ROUNDS });
    expect(await codeOf(client.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('OUT_OF_RANGE');
    expect((await client.fetchLog({ fromVersion: ROUNDS - 1, toVersion: 0 })).entries).toHaveLength(1);

    // Credentials: a token other than the one joined with, an agent that never joined, a revoked agent.
    const wrong = new GrpcTransport({ address }).connect({ agentId: 'probe', token: 'wrong' });
    expect(await codeOf(drain(wrong.fetchSnapshot({ version: 0 })))).toBe('UNAUTHENTICATED');
    const stranger = new GrpcTransport({ address }).connect({ agentId: 'stranger', token: 'x' });
    expect(await codeOf(drain(stranger.fetchSnapshot({ version: 0 })))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(drain(client.fetchSnapshot({ version: 3 })))).toBe('NOT_FOUND');
    coordinator.revoke('probe');
    expect(await codeOf(drain(client.fetchSnapshot({ version: 0 })))).toBe('PERMISSION_DENIED');
    for (const c of [client, wrong, stranger]) c.close();

    // A fresh agent is below the floor: snapshot, whatever the byte counts say.
    const agent = agentOn(f, new MeteredTransport(address), 4);
    const run = agent.run();
    await until(() => agent.state.version === ROUNDS, 20_000, 'agent at the head');
    expect(agent.state.lastCatchUp).toMatchObject({ path: 'snapshot', snapshotVersion: ROUNDS });
    expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
    await agent.close();
    await run;
    await coordinator.close();
  });

  it('a joiner near the head replays the log, which moves fewer bytes than the snapshot', async () => {
    const shortOptions = { ...options, rounds: 4 };
    const coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), shortOptions, join(dir, 'short', 'job.log'), {
      snapshots: { dir: join(dir, 'short', 'snapshots'), every: 2, chunkBytes: 128 * 1024 },
    });
    const address = coordinator.address!;
    const fleet = [0, 1].map((i) => agentOn(f, new MeteredTransport(address), i));
    const runs = fleet.map((a) => a.run());
    await coordinator.run();
    await coordinator.snapshotsWritten();
    expect(coordinator.fetchableSnapshots()).toEqual([2, 4]);

    const transport = new MeteredTransport(address);
    const joiner = agentOn(f, transport, 5);
    const run = joiner.run();
    await until(() => joiner.state.version === 4, 20_000, 'joiner at the head');
    expect(joiner.state.lastCatchUp).toMatchObject({ path: 'log', from: 0, to: 4 });
    expect(transport.meter.snapshot).toBe(0);
    expect(await joiner.backend!.sha256()).toBe(coordinator.weightsSha256());
    const snapshotPath = await meterSnapshot(address, 'meter-snapshot', f);
    expect(transport.meter.log).toBeLessThan(snapshotPath);
    expect(joiner.state.lastCatchUp!.logBytes).toBe(transport.meter.log);
    expect(joiner.state.lastCatchUp!.snapshotBytes).toBe(snapshotPath); // snapshot at the head: no log after it

    for (const agent of [...fleet, joiner]) await agent.close();
    await Promise.all([...runs, run]);
    await coordinator.close();
  });
});
