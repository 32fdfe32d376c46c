/**
 * The update log: an append-only, hash-chained sequence of (seed, coefficient) updates that, applied in order to
 * the base weights, *is* the model. An append resolves only after the whole record is on stable storage (every
 * byte written, then fdatasync), so a caller that broadcasts after `await append()` never broadcasts an update
 * it could lose. An append that fails part-way (a short write, a full disk, a file-size limit, a failed sync)
 * rejects with LogDurabilityError, cuts its partial record off when it can, and leaves the log refusing further
 * appends: whether the bytes reached the disk is unknown, so only a reopen (which verifies the file) may go on.
 * Rebase records (compaction.ts) are chained entries like updates; opening a log verifies their sums.
 *
 * With a signer (log-signature.ts) every appended record carries the coordinator's signature of its hash.
 *
 * File layout (format 2): "MEZOLOG2" · u32 header length · header JSON · SHA-256(header JSON), then records of
 * u32 payload length · payload (log-entry.ts) · SHA-256(payload) · u8 signature length (0 or 64) · signature.
 * Format 1 ("MEZOLOG1", records without the signature fields) is migrated on open: the file is rewritten in
 * format 2 under a temporary name and renamed over the old one (its records signed when the opener signs).
 * A new file is also written under a temporary name and renamed into place once its header is synced, so a
 * crash never leaves a half-written header; a file that is nothing but a cut-short header of this very job (as
 * older versions could leave) is recreated and reported.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
import { LogVerifier, SIGNATURE_BYTES, type LogSigner } from './log-signature.js';
import { verifyEntry } from './verify-entry.js';

/** The chain's format, named in the header and so in the genesis hash (the file framing has its own magic). */
export const LOG_FORMAT = 'mezo-log/1';
const MAGIC = Buffer.from('MEZOLOG2', 'latin1');
const MAGIC_V1 = Buffer.from('MEZOLOG1', 'latin1');
const HASH_BYTES = 32;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_PAYLOAD_BYTES = 70 + 12 * MAX_TERMS_PER_ENTRY;

export const logHeaderSchema = z.strictObject({
  format: z.literal(LOG_FORMAT),
  /** Names the training job; part of the genesis hash, so two jobs' logs never chain into each other. */
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'jobId must be 1–128 characters of A–Z a–z 0–9 . _ -'),
  /** SHA-256 (hex) of the base slab the entries apply to. */
  baseSha256: z.string().regex(/^[0-9a-f]{64}$/, 'baseSha256 must be 64 lowercase hex digits'),
  distribution: z.enum(['gaussian', 'rademacher', 'lowrank']),
  /**
   * The rank of 'lowrank' noise (required with it, absent otherwise). Which tensors take it follows from the
   * model's manifest (lowRankLayoutFromTensors). Logs written before low rank existed have no such field.
   */
  rank: z.number().int().min(1).max(64).optional(),
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
}).superRefine((h, ctx) => {
  if (h.distribution === 'lowrank' && h.rank === undefined) ctx.addIssue({ code: 'custom', path: ['rank'], message: "is required with distribution 'lowrank'" });
  if (h.distribution !== 'lowrank' && h.rank !== undefined) ctx.addIssue({ code: 'custom', path: ['rank'], message: "is only allowed with distribution 'lowrank'" });
});
export type LogHeader = z.infer<typeof logHeaderSchema>;
export type LogHeaderInput = Omit<z.input<typeof logHeaderSchema>, 'format'> & { format?: typeof LOG_FORMAT };

export class LogCorruptError extends Error {
  override name = 'LogCorruptError';
}

/**
 * An append could not be made durable (a short or failed write, a failed sync): the entry is not part of the
 * log and must not be broadcast. The log then refuses further appends until it is reopened.
 */
export class LogDurabilityError extends Error {
  override name = 'LogDurabilityError';
}

export interface UpdateLogOptions {
  /** Signs every appended record (the coordinator's key). */
  signer?: LogSigner;
  /** Checks, on open, that every stored record is signed with this key (agents' replicas, export). */
  verifier?: LogVerifier;
  /**
   * 'append' (default): every append is synced before it resolves. 'group' (local training, whose log no one
   * else reads while it runs): appends are written whole but synced only by sync() and close(), so a crash
   * loses at most the entries since the last sync; reopening truncates what a crash cut short.
   */
  durability?: 'append' | 'group';
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
  /**
   * The signature to store with the record, for a log without a signer that copies someone else's records (an
   * agent's replica of the coordinator's log); the caller has checked it. Ignored when the log signs itself.
   */
  signature?: string;
}

export interface RebaseInput {
  /** The round of the update it follows (a rebase is not a round of its own, so the next round stays last + 1). */
  round: number;
  /** Terms the caller computed; they must equal the log's own (compaction.ts). Default: the log's own. */
  terms?: ReadonlyArray<{ seed: Seed; coeff: number }>;
  /** As AppendInput.signature. */
  signature?: string;
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

/**
 * The genesis hash: what entry 1's prevHash must be. A low-rank job's rank follows its distribution
 * ("lowrank:4"); other jobs hash exactly as before the rank existed, so their logs still verify.
 */
export function genesisHash(header: LogHeader): string {
  const noise = header.rank === undefined ? header.distribution : `${header.distribution}:${header.rank}`;
  return createHash('sha256')
    .update(
      `${header.format}|${header.jobId}|${header.baseSha256}|${noise}|` +
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

function encodeHeader(header: LogHeader, magic = MAGIC): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([magic, length, json, createHash('sha256').update(json).digest()]);
}

function frameRecord(payload: Buffer, hash: string, signature: string | undefined): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(payload.length);
  const signatureBytes = signature === undefined ? Buffer.alloc(0) : Buffer.from(signature, 'hex');
  return Buffer.concat([length, payload, Buffer.from(hash, 'hex'), Buffer.from([signatureBytes.length]), signatureBytes]);
}

/**
 * Writes all of `data` at `position`: a write may store fewer bytes than asked (a file-size limit, a full disk
 * reached mid-record), and the rest must follow or fail, never be dropped silently.
 */
async function writeFully(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write stored nothing at byte ${position + done}`);
    done += bytesWritten;
  }
}

/** Writes a whole new file under a temporary name, syncs it, renames it to `path` and syncs the directory. */
async function replaceFile(path: string, data: Buffer): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.new`;
  const handle = await open(temporary, 'w');
  try {
    await writeFully(handle, data, 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
}

/**
 * Where a log's records are kept. The UpdateLog builds, validates and chains records; a storage only makes each
 * one durable, in order: the promise of appendRecord resolves once the record would survive a crash (file:
 * write + fdatasync; JetStream: the stream's acknowledgement), and rejects when it might not.
 */
export interface LogStorage {
  /** Stores the record of `entry` (its canonical payload, SHA-256 and signature); resolves once it is durable. */
  appendRecord(entry: LogEntry, payload: Buffer): Promise<void>;
  /** Makes every stored record durable (a storage that syncs per record has nothing to do). */
  sync?(): Promise<void>;
  close(): Promise<void>;
}

/** An append-only file, synced per record or per group (the layout at the top of this file). */
class FileLogStorage implements LogStorage {
  private failure: Error | undefined;
  private unsynced = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    /** Bytes of whole records: where the next one goes. */
    private size: number,
    private readonly group: boolean,
  ) {}

  async appendRecord(entry: LogEntry, payload: Buffer): Promise<void> {
    this.checkUsable(`entry ${entry.version}`);
    const record = frameRecord(payload, entry.hash, entry.signature);
    try {
      await writeFully(this.handle, record, this.size);
      if (this.group) this.unsynced = true;
      else await this.handle.datasync();
    } catch (err) {
      await this.fail(err as Error, `appending entry ${entry.version}`);
    }
    this.size += record.length;
  }

  async sync(): Promise<void> {
    this.checkUsable('sync');
    if (!this.unsynced) return;
    try {
      await this.handle.datasync();
    } catch (err) {
      await this.fail(err as Error, 'syncing');
    }
    this.unsynced = false;
  }

  async close(): Promise<void> {
    try {
      if (this.unsynced && !this.failure) await this.sync();
    } finally {
      await this.handle.close();
    }
  }

  private checkUsable(what: string): void {
    if (this.failure) {
      throw new LogDurabilityError(`${this.path}: ${what}: an earlier write failed (${this.failure.message}); reopen the log to go on`, { cause: this.failure });
    }
  }

  private async fail(err: Error, what: string): Promise<never> {
    this.failure = err;
    // Cut the partial record so the file ends at the last whole one; should that fail too, reopening the log
    // truncates the torn tail.
    try {
      await this.handle.truncate(this.size);
      await this.handle.datasync();
    } catch {
      // Reported through the original error below.
    }
    throw new LogDurabilityError(`${this.path}: ${what} failed, so it is not durable: ${err.message}`, { cause: err });
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
  private readonly signer: LogSigner | undefined;
  private countIgnored: (() => number) | undefined;

  private constructor(
    header: LogHeader,
    entries: LogEntry[],
    path: string | undefined,
    storage: LogStorage | undefined,
    recovery: TailRecovery | undefined,
    signer: LogSigner | undefined,
  ) {
    this.header = header;
    this.genesisHash = genesisHash(header);
    this.entryList = entries;
    this.path = path;
    this.storage = storage;
    this.recovery = recovery;
    this.signer = signer;
    this.rebaseAt = lastRebaseIndex(entries) + 1;
  }

  /**
   * A log over another storage back-end (a JetStream stream, say) whose `entries` the caller has read back and
   * verified (verifyRecord) from the genesis of `header`. New entries are appended through `storage`.
   */
  static withStorage(
    header: LogHeaderInput,
    entries: LogEntry[],
    storage: LogStorage,
    recovery?: TailRecovery,
    options: Pick<UpdateLogOptions, 'signer'> & { ignoredRecords?: () => number } = {},
  ): UpdateLog {
    const parsed = parseHeader(header);
    let prev = genesisHash(parsed);
    entries.forEach((entry, i) => {
      if (entry.version !== i + 1 || entry.prevHash !== prev) throw new LogCorruptError(`withStorage: entry ${i + 1} does not chain from genesis`);
      prev = entry.hash;
    });
    auditRebases(entries, 'withStorage');
    const log = new UpdateLog(parsed, entries, undefined, storage, recovery, options.signer);
    log.countIgnored = options.ignoredRecords;
    return log;
  }

  /** A log held in memory only (simulation, tests): same chain, validation and signatures, no durability. */
  static inMemory(header: LogHeaderInput, options: Pick<UpdateLogOptions, 'signer'> = {}): UpdateLog {
    return new UpdateLog(parseHeader(header), [], undefined, undefined, undefined, options.signer);
  }

  /**
   * open() on the file `name` in directory `dir`: callers that must not import node:path themselves (the
   * agent's core, which also runs in a browser) name the file by its directory.
   */
  static openIn(dir: string, name: string, header: LogHeaderInput, options: UpdateLogOptions = {}): Promise<UpdateLog> {
    return UpdateLog.open(join(dir, name), header, options);
  }

  /**
   * Opens the log file at `path`, creating it when absent. An existing file must carry the same header; its
   * chain (and with a signer or verifier, every record's signature) is verified, a torn final record (a crash
   * mid-append) is truncated and reported, and a format 1 file is migrated (top of this file).
   */
  static async open(path: string, header: LogHeaderInput, options: UpdateLogOptions = {}): Promise<UpdateLog> {
    const expected = parseHeader(header);
    const { signer } = options;
    const group = options.durability === 'group';
    let existing: Buffer | undefined;
    try {
      existing = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (existing === undefined || existing.length === 0 || isTornHeader(existing, expected)) {
      const fresh = encodeHeader(expected);
      await replaceFile(path, fresh);
      let recovery: TailRecovery | undefined;
      if (existing !== undefined && existing.length > 0) {
        recovery = { truncatedBytes: existing.length, keptEntries: 0, reason: 'the header was cut short (a crash while the log was created); created again' };
        logger.warn({ path, ...recovery }, 'update log had a torn header; created it again');
      }
      const storage = new FileLogStorage(await open(path, 'r+'), path, fresh.length, group);
      return new UpdateLog(expected, [], path, storage, recovery, signer);
    }
    const { header: stored, entries, validBytes, tornReason, legacy } = scanLog(existing, path);
    auditRebases(entries, path);
    if (JSON.stringify(stored) !== JSON.stringify(expected)) {
      throw new LogCorruptError(
        `${path}: log belongs to ${JSON.stringify(stored)}, not ${JSON.stringify(expected)}`,
      );
    }
    const verifier = options.verifier ?? (signer ? LogVerifier.for(signer.publicKey) : undefined);
    let resign = false;
    for (const entry of entries) {
      // scanLog checked each hash against its stored payload already.
      const fault = verifyEntry(entry, verifier, { contents: false });
      if (fault === undefined) continue;
      // The signer may sign what it wrote before it signed (an older log); anything else is not its log.
      if (signer && options.verifier === undefined && fault.kind === 'unsigned') {
        resign = true;
        continue;
      }
      throw new LogCorruptError(`${path}: entry ${entry.version} is ${fault.reason}; the log's records must be signed by ${verifier!.publicKey}`);
    }
    let recovery: TailRecovery | undefined;
    if (validBytes < existing.length) {
      recovery = { truncatedBytes: existing.length - validBytes, keptEntries: entries.length, reason: tornReason! };
      logger.warn({ path, ...recovery }, 'update log had a torn tail; truncated to the last whole entry');
    }
    if (legacy || resign) {
      // Rewritten whole under a temporary name: a crash leaves either the old file or the new one.
      const records = entries.map((entry) => {
        const signed = resign && entry.signature === undefined ? { ...entry, signature: signer!.sign(entry.hash) } : entry;
        return frameRecord(encodeEntryPayload(signed), signed.hash, signed.signature);
      });
      const image = Buffer.concat([encodeHeader(stored), ...records]);
      await replaceFile(path, image);
      for (const [i, entry] of entries.entries()) if (entry.signature === undefined && resign) entries[i] = { ...entry, signature: signer!.sign(entry.hash) };
      logger.warn({ path, entries: entries.length, signed: resign }, legacy ? 'update log migrated to format 2' : 'update log records signed');
      const storage = new FileLogStorage(await open(path, 'r+'), path, image.length, group);
      return new UpdateLog(stored, entries, path, storage, recovery, signer);
    }
    const handle = await open(path, 'r+');
    if (validBytes < existing.length) {
      try {
        await handle.truncate(validBytes);
        await handle.datasync();
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
    return new UpdateLog(stored, entries, path, new FileLogStorage(handle, path, validBytes, group), recovery, signer);
  }

  /**
   * Foreign messages the storage met where records go and left out of the log (a JetStream stream takes what
   * its subjects' permissions let through); 0 for a file.
   */
  get ignoredRecords(): number {
    return this.countIgnored?.() ?? 0;
  }

  /** The public key (log-signature.ts) that signs this log's new records; undefined when it signs nothing. */
  get publicKey(): string | undefined {
    return this.signer?.publicKey;
  }

  /** The signer's signature of a statement (LogSigner.signStatement); undefined when this log signs nothing. */
  signStatement(kind: string, fields: readonly string[]): string | undefined {
    return this.signer?.signStatement(kind, fields);
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

  /** The rank of a 'lowrank' log (undefined otherwise). */
  get rank(): number | undefined {
    return this.header.rank;
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
    const entry = this.signed(unsigned, hashPayload(payload), input.signature);
    await this.storage?.appendRecord(entry, payload);
    this.entryList.push(entry);
    return entry;
  }

  private signed(unsigned: Omit<LogEntry, 'hash' | 'signature'>, hash: string, given: string | undefined): LogEntry {
    const signature = this.signer ? this.signer.sign(hash) : given;
    return signature === undefined ? { ...unsigned, hash } : { ...unsigned, hash, signature };
  }

  /**
   * Makes every entry appended so far durable. Needed only with durability 'group' (otherwise each append
   * already is); close() does it too. Rejects with LogDurabilityError when the sync fails.
   */
  sync(): Promise<void> {
    const result = this.appendQueue.then(() => this.storage?.sync?.());
    this.appendQueue = result.catch(() => undefined);
    return result;
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
    const entry = this.signed(unsigned, hashPayload(payload), input.signature);
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

/**
 * Whether a file is only the beginning of the header this log would write (format 1 or 2): what a crash while
 * an older version created the log left. Such a file holds no entry, so creating it again loses nothing.
 */
function isTornHeader(bytes: Buffer, expected: LogHeader): boolean {
  const complete = bytes.length >= MAGIC.length + 4 && bytes.length >= MAGIC.length + 4 + bytes.readUInt32LE(MAGIC.length) + HASH_BYTES;
  if (complete) return false;
  return [MAGIC, MAGIC_V1].some((magic) => {
    const full = encodeHeader(expected, magic);
    // A file extended before its data reached the disk reads as zeros after what was written.
    if (bytes.length > full.length) return false;
    let written = bytes.length;
    while (written > 0 && bytes[written - 1] === 0) written--;
    return full.subarray(0, written).equals(bytes.subarray(0, written));
  });
}

/** Verifies a whole log image; returns the valid prefix length and why anything after it was rejected. */
function scanLog(
  bytes: Buffer,
  path: string,
): { header: LogHeader; entries: LogEntry[]; validBytes: number; tornReason?: string; legacy: boolean } {
  const magic = bytes.subarray(0, MAGIC.length);
  const legacy = magic.equals(MAGIC_V1);
  if (bytes.length < MAGIC.length + 4 || !(legacy || magic.equals(MAGIC))) {
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
    const torn = (reason: string) => ({ header, entries, validBytes: at, tornReason: `entry ${version}: ${reason}`, legacy });
    if (bytes.length - at < 4) return torn('length prefix cut short');
    const length = bytes.readUInt32LE(at);
    const hashEnd = at + 4 + length + HASH_BYTES;
    if (length > MAX_PAYLOAD_BYTES) {
      if (hashEnd >= bytes.length) return torn(`implausible length ${length}`);
      throw new LogCorruptError(`${path}: entry ${version} at byte ${at} declares ${length} bytes`);
    }
    if (hashEnd + (legacy ? 0 : 1) > bytes.length) return torn(`record cut short (${bytes.length - at} of at least ${hashEnd + (legacy ? 0 : 1) - at} bytes)`);
    const signatureLength = legacy ? 0 : bytes.readUInt8(hashEnd);
    const end = legacy ? hashEnd : hashEnd + 1 + signatureLength;
    if (signatureLength !== 0 && signatureLength !== SIGNATURE_BYTES) {
      if (end >= bytes.length) return torn(`implausible signature length ${signatureLength}`);
      throw new LogCorruptError(`${path}: entry ${version} at byte ${at} declares a signature of ${signatureLength} bytes`);
    }
    if (end > bytes.length) return torn(`record cut short (${bytes.length - at} of ${end - at} bytes)`);
    const payload = bytes.subarray(at + 4, at + 4 + length);
    const hash = hashPayload(payload);
    const isLast = end === bytes.length;
    if (hash !== bytes.toString('hex', at + 4 + length, hashEnd)) {
      if (isLast) return torn('checksum mismatch in the final record');
      throw new LogCorruptError(`${path}: entry ${version} at byte ${at} fails its checksum`);
    }
    const entry = verifyRecord(payload, hash, version, prevHash, `${path}: byte ${at}`);
    entries.push(signatureLength === 0 ? entry : { ...entry, signature: bytes.toString('hex', hashEnd + 1, end) });
    prevHash = hash;
    at = end;
  }
  return { header, entries, validBytes: at, legacy };
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
