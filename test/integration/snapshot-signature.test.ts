/**
 * Signed snapshots over gRPC on loopback: the coordinator signs what identifies the snapshot it serves (genesis,
 * version, entry hash, weights SHA-256, size) with the update log's key, and an agent loads a snapshot only when
 * that signature holds under the key it pinned. A forged snapshot whose header is consistent with its forged
 * weights (so every hash check passes) is refused whether it keeps the genuine signature, carries none or is
 * signed with another key; the agent then catches up by the log and ends on the coordinator's weights.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../coordinator/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { LogSigner, SNAPSHOT_STATEMENT, UpdateLog, snapshotStatementFields } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import {
  GRPC_FRAME_BYTES,
  GrpcTransport,
  encodeSnapshotChunk,
  loadProtocol,
  type AgentCredentials, type CoordinatorClient, type CoordinatorHandler, type Listener, type SnapshotChunk,
  type Transport,
} from '../../shared/transport/index.js';
import { fixture, logHeader, paddingOf, until, type Fixture } from './fleet-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-snapshot-signature-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Log entries before the agents come: a history long enough that the snapshot is the cheaper catch-up. */
const HISTORY = 3200;
const JOB = 'snapshot-signature';

type Forgery = 'none' | 'genuine-signature' | 'unsigned' | 'foreign-key';

/**
 * GrpcTransport whose snapshot downloads are replaced, on their way in, by other weights under a consistent
 * header: the weights' SHA-256 is recomputed, so only the signature tells the forgery apart.
 */
class ForgingTransport implements Transport {
  private readonly inner: GrpcTransport;
  private readonly forger = LogSigner.generate();
  /** Bytes of the genuine snapshot chunks as they crossed the wire (protobuf + gRPC frame). */
  readonly metered = { bytes: 0 };

  constructor(address: string, private readonly forgery: Forgery, private readonly genesisHash: string) {
    this.inner = new GrpcTransport({ address });
  }

  listen(handler: CoordinatorHandler): Promise<Listener> {
    return this.inner.listen(handler);
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const client = this.inner.connect(credentials);
    const { forgery, forger, genesisHash, metered } = this;
    const service = loadProtocol().coordinator.service;
    return {
      join: (request) => client.join(request),
      fetchLog: (request) => client.fetchLog(request),
      session: (listener) => client.session(listener),
      close: () => client.close(),
      fetchSnapshot: (request) =>
        (async function* (): AsyncGenerator<SnapshotChunk> {
          const chunks: SnapshotChunk[] = [];
          for await (const chunk of client.fetchSnapshot(request)) chunks.push(chunk);
          if (forgery === 'none') {
            for (const chunk of chunks) metered.bytes += service.FetchSnapshot!.responseSerialize(encodeSnapshotChunk(chunk)).length + GRPC_FRAME_BYTES;
            yield* chunks;
            return;
          }
          const bytes = Buffer.concat(chunks.map((c) => c.data));
          bytes.writeFloatLE(bytes.readFloatLE(0) + 0.5, 0);
          const weightsSha256 = createHash('sha256').update(bytes).digest('hex');
          const { signature: genuine, ...header } = chunks[0]!;
          const identity = { genesisHash, version: header.version, entryHash: header.entryHash, weightsSha256, totalBytes: bytes.length };
          const signature =
            forgery === 'genuine-signature' ? genuine : forgery === 'foreign-key' ? forger.signStatement(SNAPSHOT_STATEMENT, snapshotStatementFields(identity)) : undefined;
          for (const chunk of chunks) {
            yield { ...header, weightsSha256, offset: chunk.offset, data: bytes.subarray(chunk.offset, chunk.offset + chunk.data.length), ...(signature ? { signature } : {}) };
          }
        })(),
    };
  }
}

describe('signed snapshots', () => {
  let f: Fixture;
  let coordinator: Coordinator;
  const agents: Agent[] = [];
  const runs: Array<Promise<void>> = [];

  beforeAll(async () => {
    f = await fixture();
    const signer = LogSigner.generate();
    const log = UpdateLog.inMemory(logHeader(f.prepared, JOB), { signer });
    for (let round = 0; round < HISTORY; round++) await log.append({ round, lr: 0, terms: [] });
    coordinator = new Coordinator({
      log,
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport: new GrpcTransport({ address: '127.0.0.1:0' }),
      options: { jobId: JOB, rounds: HISTORY, deadlineMs: 10_000, heartbeatMs: 1000, batchSize: 32, strategy: { agentsPerRound: 1, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 } },
      snapshots: { dir: join(dir, 'snapshots'), every: 1000, chunkBytes: 128 * 1024 },
    });
    await coordinator.listen();
    await coordinator.snapshotsWritten();
    expect(coordinator.fetchableSnapshots()).toEqual([HISTORY]);
  });
  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await Promise.all(runs);
    await coordinator.close();
  });

  const catchUp = async (index: number, forgery: Forgery, transport = new ForgingTransport(coordinator.address!, forgery, coordinator.log.genesisHash)): Promise<Agent> => {
    const agent = new Agent({
      agentId: `agent-${index}`,
      token: '',
      transport,
      prepared: f.prepared,
      createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
      data: f.task.agents[index % f.task.agents.length]!,
      dataSeed: index,
      capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
      reconnect: { initialMs: 20, maxMs: 200 },
    });
    agents.push(agent);
    runs.push(agent.run());
    await until(() => agent.state.version === HISTORY, 60_000, `agent-${index} at the head`);
    return agent;
  };

  it('loads a snapshot signed by the coordinator', async () => {
    const transport = new ForgingTransport(coordinator.address!, 'none', coordinator.log.genesisHash);
    const agent = await catchUp(0, 'none', transport);
    expect(agent.state.lastCatchUp).toMatchObject({ path: 'snapshot', from: 0, to: HISTORY, snapshotVersion: HISTORY });
    // The coordinator's byte count for the snapshot path includes the signature every chunk carries.
    expect(agent.state.lastCatchUp!.snapshotBytes).toBe(transport.metered.bytes);
    expect(agent.state.snapshotsRejected).toBe(0);
    expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
  });

  it.each([
    ['keeps the genuine signature', 'genuine-signature'],
    ['carries no signature', 'unsigned'],
    ['is signed with another key', 'foreign-key'],
  ] as const)('refuses a forged snapshot that %s and catches up by the log', async (_what, forgery) => {
    const index = { 'genuine-signature': 1, unsigned: 2, 'foreign-key': 3 }[forgery];
    const agent = await catchUp(index, forgery);
    expect(agent.state.snapshotsRejected).toBe(1);
    expect(agent.state.lastCatchUp).toMatchObject({ path: 'log', from: 0, to: HISTORY });
    expect(agent.state.headHash).toBe(coordinator.log.headHash);
    expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
  });
});
