/**
 * The update log as a JetStream stream: durable (file storage, acknowledged writes), replicated when the NATS
 * cluster is (`replicas`), and readable by agents straight from the server.
 *
 * One stream per job (`<prefix>-log-<job>`, subjects `<prefix>.<job>.log.>`):
 *   subject …log.header  the log header as JSON (as in the file log), checked on every reopen (sequence 1
 *                        unless something else was published first)
 *   subject …log.entry   entry v: its canonical payload (log-entry.ts) followed by its 32-byte SHA-256, in
 *                        version order; entry v is at sequence v + 1 unless foreign messages came in between
 * With a signer (log-signature.ts) the header and every entry carry the coordinator's signature in the
 * Mezo-Signature header (of the entry hash; of the header JSON's SHA-256).
 *
 * The log is the coordinator's alone, but the stream takes whatever the NATS permissions let through on its
 * subjects. So readers (the coordinator reopening, agents reading directly) take only records that are
 * whole, decode, chain from the one before and, with a key, are signed by it; anything else — garbage, a
 * record of another job, a forged entry that chains but is not signed — is ignored and counted, never fatal
 * and never part of the log. The permissions that keep others off these subjects are in docs/security.md.
 *
 * Appends are conditional: each publish carries the stream's last sequence as this log knows it and a message
 * id derived from the entry (version and hash). When the stream moved on, the messages in between are read:
 * an entry of this log (same version, chaining from the same head, signed by the same key) means a second
 * writer, and the append fails with LogConflictError instead of forking the chain; foreign messages are
 * counted and the publish is retried after them. A publish retried after a lost acknowledgement is recognised
 * as a duplicate and not stored twice. An append resolves after the stream's acknowledgement (PubAck), i.e.
 * once the server (with replicas: a quorum of them) has stored it.
 *
 * Unlike a file, a stream has no torn tail: a record is stored whole or not at all, and the stream refuses
 * deletes, so a removed sequence is tampering and opening fails with LogCorruptError.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, MsgHdrs, NatsConnection, StoredMsg } from 'nats';
import { headers as natsHeaders, nanos, DiscardPolicy, RetentionPolicy, StorageType } from 'nats';
import { logger } from '../logger.js';
import { DEFAULT_SUBJECT_PREFIX, logStreamSubjects, type LogStreamSubjects } from '../nats-names.js';
import type { LogEntry } from './log-entry.js';
import { LogVerifier, type LogSigner } from './log-signature.js';
import { verifyEntry } from './verify-entry.js';
import { LogCorruptError, UpdateLog, verifyRecord, type LogHeader, type LogHeaderInput, type LogStorage } from './update-log.js';

const HASH_BYTES = 32;
/** The NATS message header that carries a record's signature. */
export const SIGNATURE_HEADER = 'Mezo-Signature';
/** Rounds of "the stream moved on: read what came in between, retry" before an append gives up. */
const MAX_FOREIGN_ROUNDS = 16;
/** Requests kept in flight while reading a stream back. */
const READ_WINDOW = 128;
const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;

/** The stream refused or failed an operation (not reachable, no JetStream, a configuration it rejects). */
export class JetStreamLogError extends Error {
  override name = 'JetStreamLogError';
}

/** Another writer appended to the stream first: this log is fenced out and appends nothing more. */
export class LogConflictError extends Error {
  override name = 'LogConflictError';
}

export interface JetStreamLogOptions {
  connection: NatsConnection;
  header: LogHeaderInput;
  /** Root of the job's subjects (nats-names.ts), default "mezo". */
  subjectPrefix?: string;
  /** Servers that store the stream (1–5; more than one needs a JetStream cluster). Default 1. */
  replicas?: number;
  /** 'file' (default) survives a server restart; 'memory' is for tests. */
  storage?: 'file' | 'memory';
  /** Timeout of each JetStream request and acknowledgement, ms (default 10 s). */
  timeoutMs?: number;
  /** How long the stream remembers message ids for deduplication, ms (default 2 min). */
  duplicateWindowMs?: number;
  /** Signs the header and every entry this log appends; reopening then takes only records signed by it. */
  signer?: LogSigner;
}

interface ApiErrorLike {
  code?: string;
  api_error?: { err_code?: number; description?: string };
}
const apiCode = (err: unknown): number | undefined => (err as ApiErrorLike)?.api_error?.err_code;

/** nats.js implements direct gets on the manager but leaves them out of its JetStreamManager type. */
type DirectGets = JetStreamManager & {
  direct: { getMessage(stream: string, query: { seq: number } | { last_by_subj: string }): Promise<StoredMsg> };
};

/** A stored record: the canonical payload and its hash (hex). */
export function splitLogRecord(data: Uint8Array): { payload: Buffer; hash: string } {
  if (data.length <= HASH_BYTES) throw new LogCorruptError(`record of ${data.length} bytes is too short`);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  return { payload: bytes.subarray(0, bytes.length - HASH_BYTES), hash: bytes.subarray(bytes.length - HASH_BYTES).toString('hex') };
}

const signatureOf = (header: MsgHdrs | undefined): string | undefined => header?.get(SIGNATURE_HEADER) || undefined;
const headerHash = (json: Uint8Array): string => createHash('sha256').update(json).digest('hex');

/**
 * The entry a stream message holds when it is a record of this log: on the entry subject, whole, decodable,
 * and with a verifier, signed. Undefined for anything else (its chain position is the caller's to check).
 */
export function entryFromMessage(message: StoredMsg, subjects: LogStreamSubjects, verifier: LogVerifier | undefined): LogEntry | undefined {
  if (message.subject !== subjects.logEntry) return undefined;
  const signature = signatureOf(message.header);
  let entry: LogEntry;
  try {
    const { payload, hash } = splitLogRecord(message.data);
    const decoded = verifyRecord(payload, hash, Number(payload.readBigUInt64LE(1)), payload.toString('hex', 17, 49), 'record');
    entry = signature === undefined ? decoded : { ...decoded, signature };
  } catch {
    return undefined;
  }
  // verifyRecord checked the hash against the payload; what is left is the signature.
  if (verifyEntry(entry, verifier, { contents: false }) !== undefined) return undefined;
  return entry;
}

/** Whether a message is this log's header: on the header subject, JSON, and with a verifier, signed. */
function headerFromMessage(message: StoredMsg, subjects: LogStreamSubjects, verifier: LogVerifier | undefined): unknown {
  if (message.subject !== subjects.logHeader) return undefined;
  if (verifier && !verifier.verify(headerHash(message.data), signatureOf(message.header))) return undefined;
  try {
    return JSON.parse(Buffer.from(message.data).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Runs `fetch` over `count` consecutive items with up to READ_WINDOW in flight, in order. Stops early (and
 * returns the prefix fetched) when `fetch` returns undefined.
 */
async function readWindowed<T>(count: number, fetch: (index: number) => Promise<T | undefined>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += READ_WINDOW) {
    const batch = await Promise.all(Array.from({ length: Math.min(READ_WINDOW, count - start) }, (_, k) => fetch(start + k)));
    for (const item of batch) {
      if (item === undefined) return out;
      out.push(item);
    }
  }
  return out;
}

export interface JetStreamLogStorageOptions {
  /** The stream's last sequence when the log was read (default: entry v's append expects v, no foreign messages). */
  lastSequence?: number;
  /** Checks the signatures of messages met between appends (the signer's key). */
  verifier?: LogVerifier;
}

/** The log's records from a stream, made durable by JetStream acknowledgements. */
export class JetStreamLogStorage implements LogStorage {
  private closed = false;
  private readonly js: JetStreamClient;
  private lastSequence: number | undefined;
  private foreign = 0;

  constructor(
    private readonly connection: NatsConnection,
    private readonly subjects: LogStreamSubjects,
    private readonly timeoutMs: number,
    private readonly options: JetStreamLogStorageOptions = {},
  ) {
    this.js = connection.jetstream({ timeout: timeoutMs });
    this.lastSequence = options.lastSequence;
  }

  /** Foreign messages met on the log's subjects while appending (ignored). */
  get ignoredRecords(): number {
    return this.foreign;
  }

  async appendRecord(entry: LogEntry, payload: Buffer): Promise<void> {
    if (this.closed) throw new JetStreamLogError(`stream ${this.subjects.stream}: the log is closed`);
    const data = Buffer.concat([payload, Buffer.from(entry.hash, 'hex')]);
    const msgID = `${entry.version}:${entry.hash}`;
    const h = natsHeaders();
    h.set('Mezo-Version', String(entry.version));
    if (entry.signature !== undefined) h.set(SIGNATURE_HEADER, entry.signature);
    let foreignRounds = 0;
    for (let attempt = 0; ; attempt++) {
      // With no foreign messages, entry v is stored at sequence v + 1 (the header is sequence 1).
      const expected = this.lastSequence ?? entry.version;
      const options = { msgID, headers: h, timeout: this.timeoutMs, expect: { lastSequence: expected, streamName: this.subjects.stream } };
      try {
        const ack = await this.js.publish(this.subjects.logEntry, data, options);
        if (!ack.duplicate && ack.seq !== expected + 1) {
          throw new LogConflictError(`stream ${this.subjects.stream}: entry ${entry.version} was stored at sequence ${ack.seq}, expected ${expected + 1}`);
        }
        this.lastSequence = Math.max(expected, ack.seq);
        return;
      } catch (err) {
        if (err instanceof LogConflictError) throw err;
        if (apiCode(err) === WRONG_LAST_SEQUENCE) {
          if (++foreignRounds > MAX_FOREIGN_ROUNDS) {
            throw new JetStreamLogError(`stream ${this.subjects.stream}: entry ${entry.version}: the stream kept moving on (${(err as Error).message})`, { cause: err });
          }
          if (await this.skipForeign(entry, expected, err as Error)) return;
          attempt = -1;
          continue;
        }
        // A lost acknowledgement: the same message id makes the retry a no-op if the first one was stored.
        const transient = ['TIMEOUT', '503', 'DISCONNECT', 'CONNECTION_REFUSED'].includes((err as ApiErrorLike).code ?? '');
        if (!transient || attempt >= 2) {
          throw new JetStreamLogError(`stream ${this.subjects.stream}: appending entry ${entry.version} failed: ${(err as Error).message}`, { cause: err });
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * (attempt + 1)));
      }
    }
  }

  /**
   * The stream holds messages after `expected`: an entry of this log among them fences this writer out; the
   * rest are foreign, counted, and the next publish goes after them. True when the entry itself is among them
   * (stored by an earlier try whose acknowledgement was lost, after the duplicate window).
   */
  private async skipForeign(entry: LogEntry, expected: number, cause: Error): Promise<boolean> {
    const name = this.subjects.stream;
    let jsm: JetStreamManager;
    let last: number;
    try {
      jsm = await this.connection.jetstreamManager({ timeout: this.timeoutMs });
      last = (await jsm.streams.info(name)).state.last_seq;
    } catch (err) {
      throw new JetStreamLogError(`stream ${name}: cannot read its state: ${(err as Error).message}`, { cause: err });
    }
    const messages = await readWindowed(Math.max(0, last - expected), async (k) => {
      try {
        return await jsm.streams.getMessage(name, { seq: expected + 1 + k });
      } catch (err) {
        throw new JetStreamLogError(`stream ${name}: cannot read sequence ${expected + 1 + k}: ${(err as Error).message}`, { cause: err });
      }
    });
    let stored = false;
    for (const message of messages) {
      const theirs = entryFromMessage(message, this.subjects, this.options.verifier);
      if (theirs && theirs.hash === entry.hash && !stored) {
        stored = true;
        continue;
      }
      if (theirs && theirs.version === entry.version && theirs.prevHash === entry.prevHash) {
        throw new LogConflictError(
          `stream ${name}: another writer appended entry ${entry.version} at sequence ${message.seq} (${cause.message}); this log is fenced out`,
          { cause },
        );
      }
      this.foreign++;
    }
    const ignored = messages.length - (stored ? 1 : 0);
    if (ignored > 0) logger.warn({ stream: name, ignored, before: entry.version }, 'ignored foreign messages on the log subjects');
    this.lastSequence = last;
    return stored;
  }

  async close(): Promise<void> {
    // The connection belongs to the caller; only this log stops appending.
    this.closed = true;
  }
}

async function ensureStream(jsm: JetStreamManager, subjects: LogStreamSubjects, options: JetStreamLogOptions): Promise<void> {
  try {
    await jsm.streams.info(subjects.stream);
    return;
  } catch (err) {
    if (apiCode(err) !== STREAM_NOT_FOUND) {
      throw new JetStreamLogError(`stream ${subjects.stream}: cannot read its information: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    await jsm.streams.add({
      name: subjects.stream,
      subjects: [subjects.logAll],
      storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: options.replicas ?? 1,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_msgs: -1,
      max_bytes: -1,
      max_age: 0,
      // Entries are never removed: the log is the model.
      deny_delete: true,
      deny_purge: true,
      allow_direct: true,
      duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    });
  } catch (err) {
    // Created meanwhile by another coordinator: use it.
    try {
      await jsm.streams.info(subjects.stream);
    } catch {
      throw new JetStreamLogError(`stream ${subjects.stream}: cannot create it: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Opens the job's log stream, creating it (and storing the header) when absent. The stream's header must be
 * this job's; every record is checked (top of this file), foreign ones are ignored and counted
 * (UpdateLog.ignoredRecords). Resolves with an UpdateLog whose appends go to the stream, signed by
 * options.signer. The connection stays the caller's: closing the log does not close it.
 */
export async function openJetStreamLog(options: JetStreamLogOptions): Promise<UpdateLog> {
  const { connection, signer } = options;
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new RangeError(`openJetStreamLog: replicas must be 1-5, got ${replicas}`);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const verifier = signer ? LogVerifier.for(signer.publicKey) : undefined;
  // The canonical header (defaults filled, validated) as the file log would store it.
  const expected = UpdateLog.inMemory(options.header);
  const subjects = logStreamSubjects(expected.header.jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  const name = subjects.stream;
  let jsm: JetStreamManager;
  try {
    jsm = await connection.jetstreamManager({ timeout: timeoutMs });
  } catch (err) {
    throw new JetStreamLogError(`JetStream is not available for the log of job ${subjects.jobId}: ${(err as Error).message}`, { cause: err });
  }
  await ensureStream(jsm, subjects, options);
  const read = async (seq: number): Promise<StoredMsg> => {
    try {
      return await jsm.streams.getMessage(name, { seq });
    } catch (err) {
      throw new JetStreamLogError(`stream ${name}: cannot read sequence ${seq}: ${(err as Error).message}`, { cause: err });
    }
  };
  const headerJson = Buffer.from(JSON.stringify(expected.header), 'utf8');
  let state = (await jsm.streams.info(name)).state;
  let messages = await readWindowed(state.last_seq, (k) => read(k + 1));
  if (!messages.some((m) => headerFromMessage(m, subjects, verifier) !== undefined)) {
    // This job's header without this key's signature: the log was written with another key (or before logs were
    // signed). Starting a second chain beside it would strand its agents; the operator must choose.
    const theirs = verifier && messages.find((m) => JSON.stringify(headerFromMessage(m, subjects, undefined)) === JSON.stringify(expected.header));
    if (theirs) {
      await expected.close();
      throw new LogCorruptError(
        `stream ${name}: holds this job's log, but its header (sequence ${theirs.seq}) is ${signatureOf(theirs.header) === undefined ? 'not signed' : 'signed with another key'}; ` +
          `open it with the key it was written with (--signing-key), or start a new job`,
      );
    }
    // A new stream (or one holding only foreign messages): store the header. Two coordinators starting at once
    // publish the same message id, so the stream keeps one.
    const js = connection.jetstream({ timeout: timeoutMs });
    const h = natsHeaders();
    if (signer) h.set(SIGNATURE_HEADER, signer.sign(headerHash(headerJson)));
    try {
      await js.publish(subjects.logHeader, headerJson, { msgID: `header:${expected.genesisHash}`, headers: h, timeout: timeoutMs });
    } catch (err) {
      throw new JetStreamLogError(`stream ${name}: storing the header failed: ${(err as Error).message}`, { cause: err });
    }
    state = (await jsm.streams.info(name)).state;
    messages = messages.concat(await readWindowed(state.last_seq - messages.length, (k) => read(messages.length + k + 1)));
  }
  if (state.first_seq !== 1 || state.messages !== state.last_seq) {
    throw new LogCorruptError(`stream ${name}: holds ${state.messages} messages for sequences ${state.first_seq}..${state.last_seq}; records were removed`);
  }
  let stored: unknown;
  const entries: LogEntry[] = [];
  let ignored = 0;
  for (const message of messages) {
    if (stored === undefined) {
      // The first header of this log (signed by its key) decides whose log the stream is.
      stored = headerFromMessage(message, subjects, verifier);
      if (stored !== undefined && JSON.stringify(stored) !== JSON.stringify(expected.header)) {
        throw new LogCorruptError(`stream ${name}: log belongs to ${JSON.stringify(stored)}, not ${JSON.stringify(expected.header)}`);
      }
      if (stored === undefined) ignored++;
      continue;
    }
    const entry = entryFromMessage(message, subjects, verifier);
    if (entry && entry.version === entries.length + 1 && entry.prevHash === (entries.at(-1)?.hash ?? expected.genesisHash)) entries.push(entry);
    else ignored++;
  }
  await expected.close();
  if (ignored > 0) logger.warn({ stream: name, ignored, entries: entries.length }, 'the log stream holds foreign messages; ignored them');
  const storage = new JetStreamLogStorage(connection, subjects, timeoutMs, { lastSequence: state.last_seq, ...(verifier ? { verifier } : {}) });
  return UpdateLog.withStorage(expected.header, entries, storage, undefined, { ...(signer ? { signer } : {}), ignoredRecords: () => ignored + storage.ignoredRecords });
}

/**
 * Reads entries from < version ≤ to (to 0: the head) of a job's log stream, at most `limit`, with direct gets
 * (served by any replica; read permission only). Messages that are not records of the log (top of this file;
 * with `publicKey`, also those not signed by it) are skipped and counted in `ignored`. Each entry's version and
 * link to the one before it are checked; the first entry's link is the reader's to check against its own head.
 * `head` is the newest entry version the stream showed (a lower bound when the page stopped at `limit`). A
 * replica that lags may return fewer entries than asked for.
 */
export async function readLogStream(
  connection: NatsConnection,
  subjects: LogStreamSubjects,
  from: number,
  to: number,
  options: { limit?: number; timeoutMs?: number; publicKey?: string } = {},
): Promise<{ entries: LogEntry[]; head: number; ignored: number }> {
  const jsm = (await connection.jetstreamManager({ checkAPI: false, timeout: options.timeoutMs ?? 10_000 })) as DirectGets;
  const verifier = options.publicKey === undefined ? undefined : LogVerifier.for(options.publicKey);
  const name = subjects.stream;
  let lastSeq = 0;
  let head = 0;
  try {
    const last = await jsm.direct.getMessage(name, { last_by_subj: subjects.logEntry });
    lastSeq = last.seq;
    head = entryFromMessage(last, subjects, verifier)?.version ?? 0;
  } catch (err) {
    if ((err as ApiErrorLike).code !== '404') throw new JetStreamLogError(`stream ${name}: cannot read its head: ${(err as Error).message}`, { cause: err });
  }
  const want = Math.min(to === 0 ? Number.MAX_SAFE_INTEGER : to, from + (options.limit ?? 1024)) - from;
  const entries: LogEntry[] = [];
  let ignored = 0;
  // Entry v is at sequence v + 1 or later (foreign messages only push it further), so the scan starts there.
  let seq = from + 2;
  while (entries.length < want && seq <= lastSeq) {
    const count = Math.min(READ_WINDOW, lastSeq - seq + 1, want - entries.length + 16);
    const batch = await readWindowed(count, async (k) => {
      try {
        return await jsm.direct.getMessage(name, { seq: seq + k });
      } catch (err) {
        if ((err as ApiErrorLike).code === '404') return undefined;
        throw new JetStreamLogError(`stream ${name}: cannot read sequence ${seq + k}: ${(err as Error).message}`, { cause: err });
      }
    });
    if (batch.length === 0) break;
    for (const message of batch) {
      if (entries.length >= want) break;
      const entry = entryFromMessage(message, subjects, verifier);
      const version = from + entries.length + 1;
      if (entry && entry.version < version) continue; // an earlier entry (the scan starts early), or a copy of one
      if (entry && entry.version === version && (entries.length === 0 || entry.prevHash === entries.at(-1)!.hash)) entries.push(entry);
      else ignored++;
    }
    seq += batch.length;
    // A lagging replica answers 404 past what it holds: stop at what it has.
    if (batch.length < count) break;
  }
  head = Math.max(head, entries.at(-1)?.version ?? 0);
  return { entries, head, ignored };
}
