/**
 * Catching up after a Join: the choice between replaying the log and downloading a snapshot of the weights
 * (whichever moves fewer bytes, or the snapshot when the log no longer reaches back), the snapshot's checks
 * (signature under the log key, framing, SHA-256) before anything is loaded, and the log path that starts at
 * the last rebase record. The chain follower (chain-follower.ts) applies what is fetched.
 */
import { SNAPSHOT_STATEMENT, snapshotStatementFields } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import { sha256Hex } from '../shared/model/hashing.js';
import { TransportError, type CoordinatorClient, type JoinAccepted, type SnapshotChunk } from '../shared/transport/index.js';
import { AgentStateError, type ChainFollower } from './chain-follower.js';

export type CatchUpPath = 'log' | 'snapshot';

/** How the agent last caught up after joining, and the byte counts the coordinator reported for each path. */
export interface CatchUpRecord {
  path: CatchUpPath;
  from: number;
  to: number;
  /** FetchLog bytes from `from` to the head. */
  logBytes: number;
  /** FetchSnapshot bytes plus FetchLog bytes after the snapshot (undefined when no snapshot was on offer). */
  snapshotBytes: number | undefined;
  /** The snapshot's version when path is 'snapshot'. */
  snapshotVersion?: number;
  /** Set when the log path started at this rebase record, skipping every entry before it (compaction). */
  rebaseVersion?: number;
}

/** What catching up reports into the agent's state. */
export interface CatchUpStats {
  lastCatchUp: CatchUpRecord | undefined;
  /** Snapshots downloaded and refused (hash or framing did not check out). */
  snapshotsRejected: number;
}

/**
 * The catch-up path from `version` given what the coordinator reported at join: the snapshot when the log no
 * longer reaches back to `version`, or when the snapshot plus the log after it is strictly fewer bytes than the
 * log from `version`; the log otherwise.
 */
export function chooseCatchUp(version: number, accepted: JoinAccepted): CatchUpPath {
  if (version >= accepted.currentVersion || accepted.snapshotVersion <= version) return 'log';
  // Behind the last rebase record, the log path starts at the record itself (logBytes already counts that).
  const rebase = accepted.rebaseVersion ?? 0;
  if ((version < rebase - 1 ? rebase - 1 : version) < accepted.logFloor) return 'snapshot';
  return accepted.snapshotBytes + accepted.logBytesAfterSnapshot < accepted.logBytes ? 'snapshot' : 'log';
}

/** A downloaded snapshot failed its checks; nothing was loaded. A retry (reconnect) may get a good one. */
export class SnapshotRejectedError extends TransportError {
  override name = 'SnapshotRejectedError';

  constructor(message: string) {
    super('DATA_LOSS', message);
  }
}

/**
 * Brings the weights to the version the coordinator reported at join, by the cheaper path (chooseCatchUp).
 * A snapshot that fails its checks is refused; the agent then replays the log when the coordinator still
 * serves it from the agent's version, and otherwise gives up this connection (a reconnect tries again).
 */
export async function catchUpAfterJoin(agentId: string, job: ChainFollower, client: CoordinatorClient, accepted: JoinAccepted, stats: CatchUpStats): Promise<void> {
  const from = job.version;
  if (from >= accepted.currentVersion) return;
  const path = chooseCatchUp(from, accepted);
  const rebase = accepted.rebaseVersion ?? 0;
  const offered = accepted.snapshotVersion > from ? accepted.snapshotBytes + accepted.logBytesAfterSnapshot : undefined;
  stats.lastCatchUp = { path, from, to: accepted.currentVersion, logBytes: accepted.logBytes, snapshotBytes: offered };
  logger.info({ agent: agentId, ...stats.lastCatchUp }, 'catching up');
  if (path === 'snapshot') {
    try {
      await loadSnapshot(agentId, job, client, accepted.snapshotVersion);
      stats.lastCatchUp.snapshotVersion = accepted.snapshotVersion;
    } catch (err) {
      if (!(err instanceof SnapshotRejectedError)) throw err;
      stats.snapshotsRejected++;
      if ((from < rebase - 1 ? rebase - 1 : from) < accepted.logFloor) throw err;
      logger.warn({ agent: agentId, err: err.message }, 'snapshot refused; catching up by the log instead');
      stats.lastCatchUp = { ...stats.lastCatchUp, path: 'log' };
    }
  }
  if (job.version < rebase - 1) {
    await job.jumpToRebase(client, rebase);
    stats.lastCatchUp.rebaseVersion = rebase;
  }
  await job.catchUp(client, accepted.currentVersion);
}

/** Downloads the snapshot at `version`, checks its signature (with a log key), framing and SHA-256, and only then loads it. */
export async function loadSnapshot(agentId: string, job: ChainFollower, client: CoordinatorClient, version: number): Promise<void> {
  const expectedBytes = job.prepared.manifest.slabLength * 4;
  let first: SnapshotChunk | undefined;
  let bytes: Uint8Array | undefined;
  let received = 0;
  for await (const chunk of client.fetchSnapshot({ version })) {
    if (!first) {
      if (chunk.version !== version) throw new SnapshotRejectedError(`snapshot: asked for version ${version}, got ${chunk.version}`);
      if (chunk.totalBytes !== expectedBytes) throw new SnapshotRejectedError(`snapshot ${version}: ${chunk.totalBytes} bytes, the model has ${expectedBytes}`);
      // With a log key, the weights and the head they continue from must be the coordinator's own word.
      const identity = { genesisHash: job.accepted.genesisHash, version: chunk.version, entryHash: chunk.entryHash, weightsSha256: chunk.weightsSha256, totalBytes: chunk.totalBytes };
      if (job.verifier && !job.verifier.verifyStatement(SNAPSHOT_STATEMENT, snapshotStatementFields(identity), chunk.signature)) {
        throw new SnapshotRejectedError(`snapshot ${version}: ${chunk.signature === undefined ? 'unsigned' : 'signature does not hold'} under the log key ${job.verifier.publicKey}; not loaded`);
      }
      first = chunk;
      bytes = new Uint8Array(chunk.totalBytes);
    } else if (chunk.version !== first.version || chunk.entryHash !== first.entryHash || chunk.weightsSha256 !== first.weightsSha256 || chunk.totalBytes !== first.totalBytes || chunk.signature !== first.signature) {
      throw new SnapshotRejectedError(`snapshot ${version}: chunk at offset ${chunk.offset} belongs to another snapshot`);
    }
    if (chunk.offset !== received) throw new SnapshotRejectedError(`snapshot ${version}: chunk at offset ${chunk.offset}, expected ${received}`);
    bytes!.set(chunk.data, received);
    received += chunk.data.length;
  }
  if (!first || !bytes || received !== first.totalBytes) {
    throw new SnapshotRejectedError(`snapshot ${version}: stream ended after ${received} of ${first?.totalBytes ?? expectedBytes} bytes`);
  }
  const sha = sha256Hex(bytes);
  if (sha !== first.weightsSha256) {
    throw new SnapshotRejectedError(`snapshot ${version}: weights hash to ${sha}, the coordinator says ${first.weightsSha256}; not loaded`);
  }
  // Little-endian float32 whatever the host's byte order.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const slab = new Float32Array(bytes.length / 4);
  for (let i = 0; i < slab.length; i++) slab[i] = view.getFloat32(i * 4, true);
  await job.backend.load(slab);
  const loaded = await job.backend.sha256();
  if (loaded !== first.weightsSha256) throw new AgentStateError(`snapshot ${version}: loaded weights hash to ${loaded}, expected ${first.weightsSha256}`);
  await job.adoptSnapshot(first.version, first.entryHash);
  logger.info({ agent: agentId, version, bytes: bytes.length }, 'loaded a snapshot');
}
