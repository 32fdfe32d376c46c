/**
 * The coordinator's replica of the model: the materialised weights (base + replay of the log, kept current as
 * entries commit), the recent weights hashes heartbeats are audited against, snapshot files (when to write
 * them, which ones agents may fetch, reading them out in chunks), what FetchLog serves (the log floor and the
 * byte sizes a Join reports), and compaction (when a rebase record is appended).
 */
import { slabSha256 } from '../shared/model/index.js';
import type { NoiseEngine } from '../shared/noise/engine.js';
import type { LowRankLayout } from '../shared/noise/index.js';
import { replay, SNAPSHOT_STATEMENT, snapshotStatementFields, type LogEntry, type UpdateLog } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import {
  MAX_SNAPSHOT_CHUNK_BYTES,
  TransportError,
  entryFieldBytes,
  fetchLogBytes,
  fetchSnapshotBytes,
  type FetchSnapshotRequest,
  type SnapshotChunk,
} from '../shared/transport/index.js';
import type { RoundOptions } from './options.js';
import { loadLatestSnapshot, pruneSnapshots, readSnapshotBytes, writeSnapshot, type SnapshotScan } from './snapshot.js';

/** Snapshot settings as CoordinatorInit.snapshots takes them (documented there). */
export interface SnapshotSettings {
  dir: string;
  every: number;
  keep?: number;
  keepVersions?: number;
  chunkBytes?: number;
}

export interface ReplicaInit {
  log: UpdateLog;
  baseSlab: Float32Array;
  padding: ReadonlyArray<readonly [number, number]>;
  lowRank: LowRankLayout | undefined;
  engine: NoiseEngine;
  options: Pick<RoundOptions, 'jobId' | 'distribution' | 'rank' | 'compactEvery' | 'audit'>;
  snapshots: SnapshotSettings | undefined;
}

/** Weights hashes kept for heartbeat audits: the newest this many versions. */
const SHA_HISTORY = 256;

export class Replica {
  private readonly log: UpdateLog;
  private readonly engine: NoiseEngine;
  readonly baseSlab: Float32Array;
  private readonly padding: ReadonlyArray<readonly [number, number]>;
  private readonly lowRank: LowRankLayout | undefined;
  private readonly compactEvery: number | undefined;
  private readonly shaAt = new Map<number, string>();
  private materialised: Float32Array | undefined;
  private readonly snapshots: { dir: string; every: number; keep: number; keepVersions: number | undefined; chunkBytes: number } | undefined;
  /** Snapshots on disk that agents may fetch, oldest first. */
  private retained: Array<{ version: number }> = [];
  /** entryFieldsUpTo[v]: FetchLog bytes of entries 1..v, their page framing aside (see wire-size.ts). */
  private readonly entryFieldsUpTo: number[] = [0];
  private snapshotWrites: Promise<void> = Promise.resolve();
  /** What restore() found in the snapshot directory (undefined without snapshots). */
  snapshotScan: SnapshotScan | undefined;

  /** Checks that the log, the base slab and the options describe one job; throws RangeError naming the mismatch. */
  constructor(init: ReplicaInit) {
    const { log, options } = init;
    this.log = log;
    this.engine = init.engine;
    this.baseSlab = init.baseSlab;
    this.padding = init.padding;
    this.compactEvery = options.compactEvery;
    const header = log.header;
    const baseSha = slabSha256(init.baseSlab);
    if (header.baseSha256 !== baseSha) {
      throw new RangeError(`coordinator: the log's base is ${header.baseSha256.slice(0, 12)}…, the base slab's is ${baseSha.slice(0, 12)}…`);
    }
    if (header.jobId !== options.jobId) throw new RangeError(`coordinator: the log belongs to job ${header.jobId}, not ${options.jobId}`);
    if (header.distribution !== options.distribution) {
      throw new RangeError(`coordinator: the log perturbs with '${header.distribution}', options say '${options.distribution}'`);
    }
    if (header.rank !== options.rank) throw new RangeError(`coordinator: the log's rank is ${header.rank ?? 'none'}, options say ${options.rank ?? 'none'}`);
    if (header.distribution === 'lowrank' && init.lowRank?.rank !== header.rank) {
      throw new RangeError(`coordinator: lowRank must be the model's layout at rank ${header.rank} (a 'lowrank' log replays with it)`);
    }
    this.lowRank = header.distribution === 'lowrank' ? init.lowRank : undefined;
    if (init.snapshots) {
      const { dir, every, keep = 2, keepVersions, chunkBytes = MAX_SNAPSHOT_CHUNK_BYTES } = init.snapshots;
      if (!Number.isSafeInteger(every) || every < 1) throw new RangeError(`coordinator: snapshots.every must be a positive integer, got ${every}`);
      if (keepVersions !== undefined && (!Number.isSafeInteger(keepVersions) || keepVersions < 0)) {
        throw new RangeError(`coordinator: snapshots.keepVersions must be a non-negative integer, got ${keepVersions}`);
      }
      if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4 || chunkBytes > MAX_SNAPSHOT_CHUNK_BYTES || chunkBytes % 4 !== 0) {
        throw new RangeError(`coordinator: snapshots.chunkBytes must be a multiple of 4 in [4, ${MAX_SNAPSHOT_CHUNK_BYTES}], got ${chunkBytes}`);
      }
      this.snapshots = { dir, every, keep: Math.max(1, keep), keepVersions, chunkBytes };
    }
    if (this.compactEvery !== undefined) {
      // The options refuse weight decay; a log that already decays since its last rebase cannot be compacted either.
      const decaying = this.log.entries(this.log.lastRebaseVersion).find((e) => e.decay !== 1);
      if (decaying) {
        throw new RangeError(`coordinator: compactEvery: log entry ${decaying.version} decays the weights, so the history does not collapse to per-seed sums`);
      }
    }
    // With snapshots, restore() materialises (from the newest snapshot); otherwise do it now when auditing.
    if (options.audit && !this.snapshots) this.materialise();
  }

  private replayOptions(): Parameters<typeof replay>[4] {
    return { decayRanges: this.log.header.decayRanges, base: this.baseSlab, padding: this.padding, lowRank: this.lowRank };
  }

  /** Materialises the weights from the newest valid snapshot plus the log after it (a full replay without one). */
  async restore(): Promise<void> {
    if (!this.snapshots || this.materialised) return;
    const scan = await loadLatestSnapshot(this.snapshots.dir, this.log, this.baseSlab.length);
    this.snapshotScan = scan;
    for (const { path, reason } of scan.rejected) logger.warn({ path, reason }, 'skipped an unusable snapshot');
    if (!scan.snapshot) {
      this.materialise();
    } else {
      const { slab, meta } = scan.snapshot;
      this.shaAt.set(meta.version, meta.weightsSha256);
      replay(this.engine, slab, this.log.entries(meta.version), this.log.distribution, this.replayOptions());
      this.materialised = slab;
      this.shaAt.set(this.log.version, slabSha256(slab));
      this.retained = [{ version: meta.version }];
      logger.info({ version: meta.version, replayed: this.log.version - meta.version }, 'materialised from a snapshot');
    }
    // A long log with no recent snapshot: write one at the head now, so agents far behind need not replay it all.
    const newest = this.newestSnapshot();
    if (this.log.version > 0 && this.log.version - newest >= this.snapshots.every) this.queueSnapshot(this.log.version);
  }

  /** Version of the newest snapshot agents can fetch; 0 when there is none. */
  newestSnapshot(): number {
    return this.retained.at(-1)?.version ?? 0;
  }

  /**
   * FetchLog serves entries with version > this floor (snapshots.keepVersions; 0 when unbounded). An agent
   * below it starts from the newest snapshot or from the last rebase record, so the floor never passes both.
   */
  logFloor(): number {
    const keepVersions = this.snapshots?.keepVersions;
    if (keepVersions === undefined) return 0;
    const newest = this.newestSnapshot();
    return Math.max(0, Math.min(this.log.version - keepVersions, Math.max(newest, this.log.lastRebaseVersion - 1)));
  }

  /** Where the log path from `version` starts: behind the last rebase, at the rebase record itself. */
  private logPathFrom(version: number): number {
    const rebase = this.log.lastRebaseVersion;
    return version < rebase - 1 ? rebase - 1 : version;
  }

  /** FetchLog bytes (wire-size.ts) an agent at `version` downloads to reach the head. */
  logBytesFrom(version: number): number {
    const from = this.logPathFrom(version);
    const head = this.log.version;
    for (let v = this.entryFieldsUpTo.length; v <= head; v++) {
      this.entryFieldsUpTo.push(this.entryFieldsUpTo[v - 1]! + entryFieldBytes(this.log.entries(v - 1, v)[0]!));
    }
    return fetchLogBytes(head - from, this.entryFieldsUpTo[head]! - this.entryFieldsUpTo[from]!, head);
  }

  /** FetchSnapshot bytes (wire-size.ts) of the snapshot at `version`; 0 for version 0 (none). */
  snapshotBytes(version: number): number {
    return version === 0 ? 0 : fetchSnapshotBytes(version, this.baseSlab.length * 4, this.snapshots!.chunkBytes, this.log.publicKey !== undefined);
  }

  /** Versions of the snapshots agents can fetch now, oldest first. */
  fetchableSnapshots(): number[] {
    return this.retained.map((r) => r.version);
  }

  /** The chunks of a retained snapshot, read from its file and cut lazily as the stream drains. */
  async snapshotChunks(request: FetchSnapshotRequest): Promise<Iterable<SnapshotChunk>> {
    const snapshots = this.snapshots;
    const version = request.version === 0 ? this.retained.at(-1)?.version : request.version;
    if (!snapshots || version === undefined || !this.retained.some((r) => r.version === version)) {
      throw new TransportError('NOT_FOUND', `fetchSnapshot: no snapshot${request.version === 0 ? '' : ` at version ${request.version}`} is available (have: ${this.fetchableSnapshots().join(', ') || 'none'})`);
    }
    let stored: Awaited<ReturnType<typeof readSnapshotBytes>>;
    try {
      stored = await readSnapshotBytes(snapshots.dir, version);
    } catch (err) {
      throw new TransportError('NOT_FOUND', `fetchSnapshot: snapshot ${version} cannot be read: ${(err as Error).message}`);
    }
    const { meta, body } = stored;
    const chunkBytes = snapshots.chunkBytes;
    // Signed with the log's key, so an agent takes these weights only from this coordinator.
    const identity = { genesisHash: this.log.genesisHash, version: meta.version, entryHash: meta.entryHash, weightsSha256: meta.weightsSha256, totalBytes: body.length };
    const signature = this.log.signStatement(SNAPSHOT_STATEMENT, snapshotStatementFields(identity));
    return (function* (): Generator<SnapshotChunk> {
      for (let offset = 0; offset < body.length; offset += chunkBytes) {
        yield {
          version: meta.version,
          entryHash: meta.entryHash,
          weightsSha256: meta.weightsSha256,
          totalBytes: body.length,
          offset,
          data: body.subarray(offset, Math.min(body.length, offset + chunkBytes)),
          ...(signature !== undefined ? { signature } : {}),
        };
      }
    })();
  }

  private maybeSnapshot(version: number): void {
    if (!this.snapshots || version % this.snapshots.every !== 0) return;
    this.queueSnapshot(version);
  }

  /** Queues a snapshot of the materialised weights, which must be at `version` now. */
  private queueSnapshot(version: number): void {
    const snapshots = this.snapshots;
    if (!snapshots || !this.materialised) return;
    const slab = this.materialised.slice();
    this.snapshotWrites = this.snapshotWrites
      .then(async () => {
        await writeSnapshot(snapshots.dir, this.log, version, slab);
        // Fetchable from now on; pruned ones stop being offered before their files go.
        this.retained = [...this.retained.filter((r) => r.version !== version), { version }].sort((a, b) => a.version - b.version).slice(-snapshots.keep);
        await pruneSnapshots(snapshots.dir, snapshots.keep);
      })
      .catch((err: unknown) => logger.warn({ version, err: (err as Error).message }, 'writing a snapshot failed; the log alone still holds the model'));
  }

  /** Resolves once every snapshot queued so far is written (or failed). */
  snapshotsWritten(): Promise<void> {
    return this.snapshotWrites;
  }

  /** SHA-256 of the materialised weights at `version`, while it is among the recent versions kept for audits. */
  weightsSha256At(version: number): string | undefined {
    return this.shaAt.get(version);
  }

  /** base + replay(log): the model the log describes, bit for bit. Kept up to date as rounds commit. */
  materialise(): Float32Array {
    if (!this.materialised) {
      const slab = this.baseSlab.slice();
      this.shaAt.set(0, slabSha256(slab));
      replay(this.engine, slab, this.log.entries(), this.log.distribution, this.replayOptions());
      this.materialised = slab;
      this.shaAt.set(this.log.version, slabSha256(slab));
    }
    return this.materialised;
  }

  /** A durable entry joins the replica: the materialised weights (when kept) advance, and a snapshot is due every `every`. */
  committed(entry: LogEntry): void {
    if (this.materialised) {
      replay(this.engine, this.materialised, [entry], this.log.distribution, this.replayOptions());
      this.shaAt.set(entry.version, slabSha256(this.materialised));
      this.shaAt.delete(entry.version - SHA_HISTORY);
    }
    this.maybeSnapshot(entry.version);
  }

  /**
   * Compaction (options.compactEvery, pool mode): once that many updates follow the last rebase, appends a
   * rebase record — durable before broadcast, like any entry — and applies it to the materialised weights;
   * `broadcast` sends it on.
   */
  async maybeCompact(round: number, broadcast: (entry: LogEntry) => void): Promise<void> {
    const every = this.compactEvery;
    if (every === undefined || this.log.version - this.log.lastRebaseVersion < every) return;
    const rebase = await this.log.appendRebase({ round });
    this.committed(rebase);
    broadcast(rebase);
    logger.info({ version: rebase.version, seeds: rebase.terms.length }, 'rebase record appended (compaction)');
  }
}
