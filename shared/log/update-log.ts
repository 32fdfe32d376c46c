/**
 * The update log: an append-only, hash-chained sequence of (seed, coefficient) updates that, applied in order to
 * the base weights, *is* the model. An append resolves only after the record is on stable storage (write +
 * fdatasync), so a caller that broadcasts after `await append()` never broadcasts an update it could lose.
 * Rebase records (compaction.ts) are chained entries like updates; opening a log verifies their sums.
 *
 * File layout: "MEZOLOG1" · u32 header length · header JSON · SHA-256(header JSON), then records of
 * u32 payload length · payload (log-entry.ts) · SHA-256(payload).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { logger } from '../logger.js';
import type { Distribution, Seed } from '../noise/index.js';
import {
  LogFormatError,
  MAX_TERMS_PER_ENTRY,
  decodeEntryPayload,
  encodeEntryPayload,
  hashPayload,
  normaliseTerms,
  type LogEntry,
} from './log-entry.js';
import { CoefficientSums, CompactionError, lastRebaseIndex, verifyRebases } from './compaction.js';

export const LOG_FORMAT = 'mezo-log/1';
const MAGIC = Buffer.from('MEZOLOG1', 'latin1');
const HASH_BYTES = 32;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_PAYLOAD_BYTES = 70 + 12 * MAX_TERMS_PER_ENTRY;

export const logHeaderSchema = z.strictObject({
  format: z.literal(LOG_FORMAT),
  /** Names the training job; part of the genesis hash, so two jobs' logs never chain into each other. */
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'jobId must be 1–128 characters of A–Z a–z 0–9 . _ -'),
  /** SHA-256 (hex) of the base slab the entries apply to. */
  baseSha256: z.string().regex(/^[0-9a-f]{64}$/, 'baseSha256 must be 64 lowercase hex digits'),
  distribution: z.enum(['gaussian', 'rademacher']),
  /**
   * Slab ranges [start, end) that weight decay applies to (weight matrices; biases and norms are left out).
   * Sorted, non-overlapping. Empty when the job uses no weight decay.
   */
  decayRanges: z
    .array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]))
    .default([])
    .refine(
      (ranges) => ranges.every(([start, end], i) => start < end && (i === 0 || ranges[i - 1]![1] <= start)),
      'decayRanges must be sorted, non-empty, non-overlapping [start, end) pairs',
    ),
});
export type LogHeader = z.infer<typeof logHeaderSchema>;
export type LogHeaderInput = Omit<z.input<typeof logHeaderSchema>, 'format'> & { format?: typeof LOG_FORMAT };

export class LogCorruptError extends Error {
  override name = 'LogCorruptError';
}

/** What reopening a log found and cut off: a record torn by a crash mid-write. */
export interface TailRecovery {
  /** Bytes removed from the end of the file. */
  truncatedBytes: number;
  /** Entries kept (the head version after recovery). */
  keptEntries: number;
  reason: string;
}

export interface AppendInput {
  round: number;
  lr: number;
  /** Weight-decay multiplier for the header's decay ranges (default 1: none); stored as binary32. */
  decay?: number;
  terms: ReadonlyArray<{ seed: Seed; coeff: number }>;
}

export interface RebaseInput {
  /** The round of the update it follows (a rebase is not a round of its own, so the next round stays last + 1). */
  round: number;
  /** Terms the caller computed; they must equal the log's own (compaction.ts). Default: the log's own. */
  terms?: ReadonlyArray<{ seed: Seed; coeff: number }>;
}

/** Checks the rebase records of a log read back from storage; a wrong one makes the log corrupt. */
function auditRebases(entries: readonly LogEntry[], where: string): void {
  try {
    verifyRebases(entries);
  } catch (err) {
    if (err instanceof CompactionError) throw new LogCorruptError(`${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The genesis hash: what entry 1's prevHash must be. */
export function genesisHash(header: LogHeader): string {
  return createHash('sha256')
    .update(
      `${header.format}|${header.jobId}|${header.baseSha256}|${header.distribution}|` +
        header.decayRanges.map(([start, end]) => `${start}-${end}`).join(','),
    )
    .digest('hex');
}

function parseHeader(input: unknown): LogHeader {
  const result = logHeaderSchema.safeParse({ format: LOG_FORMAT, ...(input as object) });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new LogFormatError(`log header: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

function encodeHeader(header: LogHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([MAGIC, length, json, createHash('sha256').update(json).digest()]);
}

function frameRecord(payload: Buffer, hash: string): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(payload.length);
  return Buffer.concat([length, payload, Buffer.from(hash, 'hex')]);
}

/**
 * Where a log's records are kept. The UpdateLog builds, validates and chains records; a storage only makes each
 * one durable, in order: the promise of appendRecord resolves once the record would survive a crash (file:
 * write + fdatasync; JetStream: the stream's acknowledgement).
 */
export interface LogStorage {
  /** Stores the record of `entry` (its canonical payload and SHA-256); resolves once it is durable. */
  appendRecord(entry: LogEntry, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** An append-only file with fdatasync per record (the layout at the top of this file). */
class FileLogStorage implements LogStorage {
  constructor(private readonly handle: FileHandle) {}

  async appendRecord(entry: LogEntry, payload: Buffer): Promise<void> {
    await this.handle.write(frameRecord(payload, entry.hash));
    await this.handle.datasync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/**
 * Checks one stored record against the chain: its hash, its decoding, its version and its link to `prevHash`.
 * `where` names the record in errors. Storage back-ends that read records back (files, streams) share it.
 */
export function verifyRecord(payload: Buffer, hash: string, expectedVersion: number, prevHash: string, where: string): LogEntry {
  if (hashPayload(payload) !== hash) throw new LogCorruptError(`${where}: entry ${expectedVersion} fails its checksum`);
  let decoded;
  try {
    decoded = decodeEntryPayload(payload);
  } catch (err) {
    throw new LogCorruptError(`${where}: entry ${expectedVersion} is malformed`, { cause: err });
  }
  if (decoded.version !== expectedVersion || decoded.prevHash !== prevHash) {
    throw new LogCorruptError(
      `${where}: hash chain broken at entry ${expectedVersion} (version ${decoded.version}, prevHash ${decoded.prevHash.slice(0, 12)}… ` +
        `expected ${prevHash.slice(0, 12)}…)`,
    );
  }
  return { ...decoded, hash };
}

export class UpdateLog {
  readonly header: LogHeader;
  readonly genesisHash: string;
  /** Set when opening cut a torn tail. */
  readonly recovery: TailRecovery | undefined;
  readonly path: string | undefined;
  private readonly entryList: LogEntry[];
  private storage: LogStorage | undefined;
  /** Per-seed coefficient sums (compaction.ts), brought up to the head when a rebase is appended. */
  private readonly sums = new CoefficientSums();
  private rebaseAt: number;
  private appendQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    header: LogHeader,
    entries: LogEntry[],
    path: string | undefined,
    storage: LogStorage | undefined,
    recovery: TailRecovery | undefined,
  ) {
    this.header = header;
    this.genesisHash = genesisHash(header);
    this.entryList = entries;
    this.path = path;
    this.storage = storage;
    this.recovery = recovery;
    this.rebaseAt = lastRebaseIndex(entries) + 1;
  }

  /**
   * A log over another storage back-end (a JetStream stream, say) whose `entries` the caller has read back and
   * verified (verifyRecord) from the genesis of `header`. New entries are appended through `storage`.
   */
  static withStorage(header: LogHeaderInput, entries: LogEntry[], storage: LogStorage, recovery?: TailRecovery): UpdateLog {
    const parsed = parseHeader(header);
    let prev = genesisHash(parsed);
    entries.forEach((entry, i) => {
      if (entry.version !== i + 1 || entry.prevHash !== prev) throw new LogCorruptError(`withStorage: entry ${i + 1} does not chain from genesis`);
      prev = entry.hash;
    });
    auditRebases(entries, 'withStorage');
    return new UpdateLog(parsed, entries, undefined, storage, recovery);
  }

  /** A log held in memory only (simulation, tests): same chain and validation, no durability. */
  static inMemory(header: LogHeaderInput): UpdateLog {
    return new UpdateLog(parseHeader(header), [], undefined, undefined, undefined);
  }

  /**
   * Opens the log file at `path`, creating it when absent. An existing file must carry the same header; its
   * chain is verified, and a torn final record (a crash mid-append) is truncated and reported.
   */
  static async open(path: string, header: LogHeaderInput): Promise<UpdateLog> {
    const expected = parseHeader(header);
    let existing: Buffer | undefined;
    try {
      existing = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (existing === undefined || existing.length === 0) {
      mkdirSync(dirname(path), { recursive: true });
      const handle = await open(path, 'w');
      await handle.write(encodeHeader(expected));
      await handle.datasync();
      await syncDirectory(dirname(path));
      return new UpdateLog(expected, [], path, new FileLogStorage(handle), undefined);
    }
    const { header: stored, entries, validBytes, tornReason } = scanLog(existing, path);
    auditRebases(entries, path);
    if (JSON.stringify(stored) !== JSON.stringify(expected)) {
      throw new LogCorruptError(
        `${path}: log belongs to ${JSON.stringify(stored)}, not ${JSON.stringify(expected)}`,
      );
    }
    const handle = await open(path, 'r+');
    let recovery: TailRecovery | undefined;
    if (validBytes < existing.length) {
      await handle.truncate(validBytes);
      await handle.datasync();
      recovery = { truncatedBytes: existing.length - validBytes, keptEntries: entries.length, reason: tornReason! };
      logger.warn({ path, ...recovery }, 'update log had a torn tail; truncated to the last whole entry');
    }
    await handle.close();
    return new UpdateLog(stored, entries, path, new FileLogStorage(await open(path, 'a')), recovery);
  }

  /** Number of entries: the version of the model the log describes. */
  get version(): number {
    return this.entryList.length;
  }

  /** Version of the newest rebase record (0: none). Replaying from it needs only the base slab. */
  get lastRebaseVersion(): number {
    return this.rebaseAt;
  }

  /** Hash of the last entry (the genesis hash for an empty log). */
  get headHash(): string {
    return this.entryList.at(-1)?.hash ?? this.genesisHash;
  }

  get distribution(): Distribution {
    return this.header.distribution;
  }

  /** Entries with from < version ≤ to (defaults: all). */
  entries(from = 0, to = this.version): LogEntry[] {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to > this.version) {
      throw new RangeError(`entries: need integers 0 <= from (${from}) <= to (${to}) <= version (${this.version})`);
    }
    return this.entryList.slice(from, to);
  }

  /**
   * Appends the next entry. Resolves with the stored entry once it is durable; rejects (changing nothing) on
   * invalid terms. Appends are serialised in call order.
   */
  append(input: AppendInput): Promise<LogEntry> {
    const result = this.appendQueue.then(() => this.appendNow(input));
    this.appendQueue = result.catch(() => undefined);
    return result;
  }

  private async appendNow(input: AppendInput): Promise<LogEntry> {
    if (this.closed) throw new Error('append: the update log is closed');
    const unsigned = {
      kind: 'update' as const,
      version: this.version + 1,
      round: input.round,
      prevHash: this.headHash,
      lr: input.lr,
      decay: Math.fround(input.decay ?? 1),
      terms: normaliseTerms(input.terms),
    };
    const payload = encodeEntryPayload(unsigned);
    const entry: LogEntry = { ...unsigned, hash: hashPayload(payload) };
    await this.storage?.appendRecord(entry, payload);
    this.entryList.push(entry);
    return entry;
  }

  /**
   * Appends a rebase record (compaction.ts): every seed's coefficient sum, so that replicas re-anchor at this
   * version to base + Σ sum·z. Durable like any entry. Rejects with CompactionError, changing nothing, when an
   * update since the previous rebase decays the weights, or when `terms` differ from the log's own sums.
   */
  appendRebase(input: RebaseInput): Promise<LogEntry> {
    const result = this.appendQueue.then(() => this.appendRebaseNow(input));
    this.appendQueue = result.catch(() => undefined);
    return result;
  }

  private async appendRebaseNow(input: RebaseInput): Promise<LogEntry> {
    if (this.closed) throw new Error('appendRebase: the update log is closed');
    for (const entry of this.entryList.slice(this.sums.version)) this.sums.add(entry);
    const terms = this.sums.terms();
    if (input.terms !== undefined) {
      const wrong = this.sums.mismatch({ terms: normaliseTerms(input.terms) });
      if (wrong !== undefined) throw new CompactionError(`appendRebase: the terms given are not the log's coefficient sums: ${wrong}`);
    }
    const unsigned = { kind: 'rebase' as const, version: this.version + 1, round: input.round, prevHash: this.headHash, lr: 0, decay: 1, terms };
    const payload = encodeEntryPayload(unsigned);
    const entry: LogEntry = { ...unsigned, hash: hashPayload(payload) };
    await this.storage?.appendRecord(entry, payload);
    this.entryList.push(entry);
    this.rebaseAt = entry.version;
    return entry;
  }

  /** Waits for pending appends, then releases the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.appendQueue;
    this.closed = true;
    await this.storage?.close();
    this.storage = undefined;
  }
}

/** Verifies a whole log image; returns the valid prefix length and why anything after it was rejected. */
function scanLog(
  bytes: Buffer,
  path: string,
): { header: LogHeader; entries: LogEntry[]; validBytes: number; tornReason?: string } {
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new LogCorruptError(`${path}: not a mezo update log (bad magic)`);
  }
  const headerLength = bytes.readUInt32LE(MAGIC.length);
  const headerStart = MAGIC.length + 4;
  const headerEnd = headerStart + headerLength;
  if (headerLength > MAX_HEADER_BYTES || headerEnd + HASH_BYTES > bytes.length) {
    throw new LogCorruptError(`${path}: log header is truncated or oversized`);
  }
  const headerJson = bytes.subarray(headerStart, headerEnd);
  if (!createHash('sha256').update(headerJson).digest().equals(bytes.subarray(headerEnd, headerEnd + HASH_BYTES))) {
    throw new LogCorruptError(`${path}: log header checksum mismatch`);
  }
  let header: LogHeader;
  try {
    header = parseHeader(JSON.parse(headerJson.toString('utf8')));
  } catch (err) {
    throw new LogCorruptError(`${path}: invalid log header`, { cause: err });
  }

  const entries: LogEntry[] = [];
  let prevHash = genesisHash(header);
  let at = headerEnd + HASH_BYTES;
  while (at < bytes.length) {
    const version = entries.length + 1;
    const torn = (reason: string) => ({ header, entries, validBytes: at, tornReason: `entry ${version}: ${reason}` });
    if (bytes.length - at < 4) return torn('length prefix cut short');
    const length = bytes.readUInt32LE(at);
    const end = at + 4 + length + HASH_BYTES;
    if (length > MAX_PAYLOAD_BYTES) {
      if (end >= bytes.length) return torn(`implausible length ${length}`);
      throw new LogCorruptError(`${path}: entry ${version} at byte ${at} declares ${length} bytes`);
    }
    if (end > bytes.length) return torn(`record cut short (${bytes.length - at} of ${end - at} bytes)`);
    const payload = bytes.subarray(at + 4, at + 4 + length);
    const hash = hashPayload(payload);
    const isLast = end === bytes.length;
    if (hash !== bytes.toString('hex', at + 4 + length, end)) {
      if (isLast) return torn('checksum mismatch in the final record');
      throw new LogCorruptError(`${path}: entry ${version} at byte ${at} fails its checksum`);
    }
    const entry = verifyRecord(payload, hash, version, prevHash, `${path}: byte ${at}`);
    entries.push(entry);
    prevHash = hash;
    at = end;
  }
  return { header, entries, validBytes: at };
}

/** fsync the directory so a newly created file's name survives a crash too. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
