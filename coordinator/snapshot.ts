/**
 * Snapshots: the materialised weights (base + replay of the log) at a version, so a restarted coordinator
 * replays only the entries after its newest snapshot instead of the whole log. Replaying the tail onto the
 * snapshot applies the same entries to the same float32 bits in the same order, so the result is bit-identical
 * to a full replay.
 *
 * File: "MEZOSNP1" · u32 metadata length · metadata JSON · the slab (little-endian float32). Written to a
 * temporary file, fsync'd and renamed into place (then the directory fsync'd), so a crash leaves either the
 * old set of snapshots or the new one. On load nothing is trusted: the job, base and genesis must match the
 * log's, the entry hash at the snapshot's version must be the log's, and the weights must hash to the recorded
 * SHA-256; a snapshot failing any check is skipped (and reported) in favour of an older one.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { UpdateLog } from '../shared/log/index.js';
import { slabSha256 } from '../shared/model/index.js';

const MAGIC = Buffer.from('MEZOSNP1', 'latin1');
export const SNAPSHOT_FORMAT = 'mezo-snapshot/1';
const NAME = /^snapshot-(\d{12})\.mzsnap$/;

export interface SnapshotMeta {
  format: typeof SNAPSHOT_FORMAT;
  jobId: string;
  baseSha256: string;
  genesisHash: string;
  version: number;
  /** Hash of the log entry at `version`: ties the snapshot to one chain. */
  entryHash: string;
  weightsSha256: string;
  length: number;
}

export interface LoadedSnapshot {
  meta: SnapshotMeta;
  slab: Float32Array;
  path: string;
}

export interface SnapshotScan {
  /** The newest snapshot that passed every check, if any. */
  snapshot: LoadedSnapshot | undefined;
  /** Snapshots skipped, newest first, with why. */
  rejected: Array<{ path: string; reason: string }>;
}

export const snapshotFileName = (version: number): string => `snapshot-${String(version).padStart(12, '0')}.mzsnap`;

async function fsyncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes the weights at the log's entry `version` to `dir`, atomically. Returns the file's path. */
export async function writeSnapshot(dir: string, log: UpdateLog, version: number, slab: Float32Array): Promise<string> {
  if (!Number.isSafeInteger(version) || version < 1 || version > log.version) {
    throw new RangeError(`snapshot: version ${version} is not an entry of the log (1..${log.version})`);
  }
  const meta: SnapshotMeta = {
    format: SNAPSHOT_FORMAT,
    jobId: log.header.jobId,
    baseSha256: log.header.baseSha256,
    genesisHash: log.genesisHash,
    version,
    entryHash: log.entries(version - 1, version)[0]!.hash,
    weightsSha256: slabSha256(slab),
    length: slab.length,
  };
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  const body = Buffer.alloc(slab.length * 4);
  for (let i = 0; i < slab.length; i++) body.writeFloatLE(slab[i]!, i * 4);
  await mkdir(dir, { recursive: true });
  const path = join(dir, snapshotFileName(version));
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writev([MAGIC, length, json, body]);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await fsyncPath(dir, 'r');
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return path;
}

function parseRaw(bytes: Buffer): { meta: SnapshotMeta; body: Buffer } {
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a snapshot (bad magic)');
  const jsonLength = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + jsonLength > bytes.length) throw new Error('metadata cut short');
  const meta = JSON.parse(bytes.toString('utf8', start, start + jsonLength)) as SnapshotMeta;
  if (meta.format !== SNAPSHOT_FORMAT) throw new Error(`unknown format ${String(meta.format)}`);
  const body = bytes.subarray(start + jsonLength);
  if (!Number.isSafeInteger(meta.length) || body.length !== meta.length * 4) throw new Error(`holds ${body.length} bytes, not ${meta.length} float32 values`);
  return { meta, body };
}

function parse(bytes: Buffer): { meta: SnapshotMeta; slab: Float32Array } {
  const { meta, body } = parseRaw(bytes);
  const slab = new Float32Array(meta.length);
  for (let i = 0; i < slab.length; i++) slab[i] = body.readFloatLE(i * 4);
  return { meta, slab };
}

/** Why a parsed snapshot does not belong to `log` (undefined when it does). */
function mismatch(meta: SnapshotMeta, slab: Float32Array, log: UpdateLog, slabLength: number): string | undefined {
  if (meta.jobId !== log.header.jobId || meta.baseSha256 !== log.header.baseSha256 || meta.genesisHash !== log.genesisHash) {
    return 'belongs to another job or base';
  }
  if (!Number.isSafeInteger(meta.version) || meta.version < 1 || meta.version > log.version) return `version ${meta.version} is not in the log (head ${log.version})`;
  if (log.entries(meta.version - 1, meta.version)[0]!.hash !== meta.entryHash) return `entry ${meta.version} of the log has another hash`;
  if (slab.length !== slabLength) return `holds ${slab.length} weights, the model ${slabLength}`;
  if (slabSha256(slab) !== meta.weightsSha256) return 'weights do not match their recorded SHA-256';
  return undefined;
}

/** The newest valid snapshot in `dir` for `log` (none when the directory is missing or holds no valid one). */
export async function loadLatestSnapshot(dir: string, log: UpdateLog, slabLength: number): Promise<SnapshotScan> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { snapshot: undefined, rejected: [] };
    throw err;
  }
  const candidates = names
    .map((name) => ({ name, version: Number(NAME.exec(name)?.[1] ?? NaN) }))
    .filter((c) => Number.isSafeInteger(c.version))
    .sort((a, b) => b.version - a.version);
  const rejected: SnapshotScan['rejected'] = [];
  for (const { name } of candidates) {
    const path = join(dir, name);
    try {
      const { meta, slab } = parse(await readFile(path));
      const reason = mismatch(meta, slab, log, slabLength);
      if (reason === undefined) return { snapshot: { meta, slab, path }, rejected };
      rejected.push({ path, reason });
    } catch (err) {
      rejected.push({ path, reason: (err as Error).message });
    }
  }
  return { snapshot: undefined, rejected };
}

/** Removes all but the newest `keep` snapshots in `dir`. */
export async function pruneSnapshots(dir: string, keep: number): Promise<void> {
  const names = (await readdir(dir)).filter((name) => NAME.test(name)).sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) await rm(join(dir, name), { force: true });
}

/**
 * The snapshot at `version` in `dir` as stored: its metadata and the weights' bytes (little-endian float32), for
 * serving to agents. It was checked when written or loaded; the receiving agent checks the SHA-256 again.
 */
export async function readSnapshotBytes(dir: string, version: number): Promise<{ meta: SnapshotMeta; body: Buffer }> {
  const { meta, body } = parseRaw(await readFile(join(dir, snapshotFileName(version))));
  if (meta.version !== version) throw new Error(`${snapshotFileName(version)} holds version ${meta.version}`);
  return { meta, body };
}
