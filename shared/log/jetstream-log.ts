/**
 * The update log as a JetStream stream: durable (file storage, acknowledged writes), replicated when the NATS
 * cluster is (`replicas`), and readable by agents straight from the server.
 *
 * One stream per job (`<prefix>-log-<job>`, subjects `<prefix>.<job>.log.>`):
 *   sequence 1   subject …log.header  the log header as JSON (as in the file log), checked on every reopen
 *   sequence v+1 subject …log.entry   entry v: its canonical payload (log-entry.ts) followed by its 32-byte SHA-256
 *
 * Appends are conditional: each publish carries the expected last sequence (entry v is accepted only while the
 * stream ends at sequence v) and a message id derived from the entry (version and hash). A second writer, or
 * a coordinator fenced out by a newer one, fails with LogConflictError instead of forking the chain; a publish
 * retried after a lost acknowledgement is recognised as a duplicate and not stored twice. An append resolves
 * after the stream's acknowledgement (PubAck), i.e. once the server (with replicas: a quorum of them) has stored it.
 *
 * Reopening reads the header and every entry back and verifies the whole chain (verifyRecord). Unlike a file,
 * a stream has no torn tail: a record is stored whole or not at all. So any bad record — a checksum or chain
 * failure, a foreign message on the log subjects, a deleted sequence — is corruption or tampering, and opening
 * fails with LogCorruptError naming the stream and sequence; nothing is truncated or repaired, because agents
 * may already hold the entries after it. An operator resolves it (restore the stream, or start a new job).
 */
import type { JetStreamClient, JetStreamManager, NatsConnection, StoredMsg } from 'nats';
import { headers as natsHeaders, nanos, DiscardPolicy, RetentionPolicy, StorageType } from 'nats';
import { DEFAULT_SUBJECT_PREFIX, jobSubjects, type JobSubjects } from '../transport/nats-subjects.js';
import { decodeEntryPayload, hashPayload, type LogEntry } from './log-entry.js';
import { LogCorruptError, UpdateLog, verifyRecord, type LogHeaderInput, type LogStorage } from './update-log.js';

const HASH_BYTES = 32;
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
  /** Root of the job's subjects (nats-subjects.ts), default "mezo". */
  subjectPrefix?: string;
  /** Servers that store the stream (1–5; more than one needs a JetStream cluster). Default 1. */
  replicas?: number;
  /** 'file' (default) survives a server restart; 'memory' is for tests. */
  storage?: 'file' | 'memory';
  /** Timeout of each JetStream request and acknowledgement, ms (default 10 s). */
  timeoutMs?: number;
  /** How long the stream remembers message ids for deduplication, ms (default 2 min). */
  duplicateWindowMs?: number;
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

/** The log's records from a stream, made durable by JetStream acknowledgements. */
export class JetStreamLogStorage implements LogStorage {
  private closed = false;
  private readonly js: JetStreamClient;

  constructor(
    connection: NatsConnection,
    private readonly subjects: JobSubjects,
    private readonly timeoutMs: number,
  ) {
    this.js = connection.jetstream({ timeout: timeoutMs });
  }

  async appendRecord(entry: LogEntry, payload: Buffer): Promise<void> {
    if (this.closed) throw new JetStreamLogError(`stream ${this.subjects.stream}: the log is closed`);
    const data = Buffer.concat([payload, Buffer.from(entry.hash, 'hex')]);
    const msgID = `${entry.version}:${entry.hash}`;
    const h = natsHeaders();
    h.set('Mezo-Version', String(entry.version));
    // Entry v is stored at sequence v + 1 (the header is sequence 1), so the stream must end at v.
    const options = { msgID, headers: h, timeout: this.timeoutMs, expect: { lastSequence: entry.version, streamName: this.subjects.stream } };
    for (let attempt = 0; ; attempt++) {
      try {
        const ack = await this.js.publish(this.subjects.logEntry, data, options);
        if (ack.seq !== entry.version + 1) {
          throw new LogConflictError(`stream ${this.subjects.stream}: entry ${entry.version} was stored at sequence ${ack.seq}, expected ${entry.version + 1}`);
        }
        return;
      } catch (err) {
        if (err instanceof LogConflictError) throw err;
        if (apiCode(err) === WRONG_LAST_SEQUENCE) {
          throw new LogConflictError(
            `stream ${this.subjects.stream}: another writer appended before entry ${entry.version} (${(err as Error).message}); this log is fenced out`,
            { cause: err },
          );
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

  async close(): Promise<void> {
    // The connection belongs to the caller; only this log stops appending.
    this.closed = true;
  }
}

async function ensureStream(jsm: JetStreamManager, subjects: JobSubjects, options: JetStreamLogOptions): Promise<void> {
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
 * Opens the job's log stream, creating it (and storing the header) when absent. An existing stream must carry
 * the same header; its whole chain is verified. Resolves with an UpdateLog whose appends go to the stream.
 * The connection stays the caller's: closing the log does not close it.
 */
export async function openJetStreamLog(options: JetStreamLogOptions): Promise<UpdateLog> {
  const { connection } = options;
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new RangeError(`openJetStreamLog: replicas must be 1-5, got ${replicas}`);
  const timeoutMs = options.timeoutMs ?? 10_000;
  // The canonical header (defaults filled, validated) as the file log would store it.
  const expected = UpdateLog.inMemory(options.header);
  const subjects = jobSubjects(expected.header.jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  const name = subjects.stream;
  let jsm: JetStreamManager;
  try {
    jsm = await connection.jetstreamManager({ timeout: timeoutMs });
  } catch (err) {
    throw new JetStreamLogError(`JetStream is not available for the log of job ${subjects.jobId}: ${(err as Error).message}`, { cause: err });
  }
  await ensureStream(jsm, subjects, options);
  let state = (await jsm.streams.info(name)).state;
  if (state.last_seq === 0) {
    const js = connection.jetstream({ timeout: timeoutMs });
    try {
      await js.publish(subjects.logHeader, Buffer.from(JSON.stringify(expected.header), 'utf8'), {
        msgID: `header:${expected.genesisHash}`,
        expect: { lastSequence: 0, streamName: name },
        timeout: timeoutMs,
      });
    } catch (err) {
      // Another coordinator stored a header first; it is checked below like any other.
      if (apiCode(err) !== WRONG_LAST_SEQUENCE) throw new JetStreamLogError(`stream ${name}: storing the header failed: ${(err as Error).message}`, { cause: err });
    }
    state = (await jsm.streams.info(name)).state;
  }
  if (state.first_seq !== 1 || state.messages !== state.last_seq) {
    throw new LogCorruptError(`stream ${name}: holds ${state.messages} messages for sequences ${state.first_seq}..${state.last_seq}; records were removed`);
  }
  const read = async (seq: number): Promise<StoredMsg> => {
    try {
      return await jsm.streams.getMessage(name, { seq });
    } catch (err) {
      throw new JetStreamLogError(`stream ${name}: cannot read sequence ${seq}: ${(err as Error).message}`, { cause: err });
    }
  };
  const headerMessage = await read(1);
  if (headerMessage.subject !== subjects.logHeader) throw new LogCorruptError(`stream ${name}: sequence 1 is on ${headerMessage.subject}, not the log header`);
  let stored: unknown;
  try {
    stored = JSON.parse(Buffer.from(headerMessage.data).toString('utf8'));
  } catch (err) {
    throw new LogCorruptError(`stream ${name}: the stored header is not JSON`, { cause: err });
  }
  if (JSON.stringify(stored) !== JSON.stringify(expected.header)) {
    throw new LogCorruptError(`stream ${name}: log belongs to ${JSON.stringify(stored)}, not ${JSON.stringify(expected.header)}`);
  }
  // Entries are read in parallel windows and verified in order, each against the one before it.
  const records = await readWindowed(state.last_seq - 1, (k) => read(k + 2));
  const entries: LogEntry[] = [];
  let prevHash = expected.genesisHash;
  for (const message of records) {
    const version = message.seq - 1;
    const where = `stream ${name}: sequence ${message.seq}`;
    if (message.subject !== subjects.logEntry) throw new LogCorruptError(`${where}: a message on ${message.subject} among the entries`);
    let record;
    try {
      record = splitLogRecord(message.data);
    } catch (err) {
      throw new LogCorruptError(`${where}: ${(err as Error).message}`, { cause: err });
    }
    const entry = verifyRecord(record.payload, record.hash, version, prevHash, where);
    entries.push(entry);
    prevHash = entry.hash;
  }
  await expected.close();
  return UpdateLog.withStorage(expected.header, entries, new JetStreamLogStorage(connection, subjects, timeoutMs));
}

/**
 * Reads entries from < version ≤ to (to 0: the head) of a job's log stream, at most `limit`, with direct gets
 * (served by any replica; read permission only). Each record's checksum, version and link to the one before it
 * are checked; the first entry's link is the reader's to check against its own head. `head` is the last entry's
 * version the stream reported. A replica that lags may return fewer entries than asked for.
 */
export async function readLogStream(
  connection: NatsConnection,
  subjects: JobSubjects,
  from: number,
  to: number,
  options: { limit?: number; timeoutMs?: number } = {},
): Promise<{ entries: LogEntry[]; head: number }> {
  const jsm = (await connection.jetstreamManager({ checkAPI: false, timeout: options.timeoutMs ?? 10_000 })) as DirectGets;
  const name = subjects.stream;
  let head = 0;
  try {
    const last = await jsm.direct.getMessage(name, { last_by_subj: subjects.logEntry });
    head = last.seq - 1;
  } catch (err) {
    if ((err as ApiErrorLike).code !== '404') throw new JetStreamLogError(`stream ${name}: cannot read its head: ${(err as Error).message}`, { cause: err });
  }
  const end = Math.min(to === 0 ? head : to, head, from + (options.limit ?? 1024));
  const records = await readWindowed(Math.max(0, end - from), async (k) => {
    try {
      return await jsm.direct.getMessage(name, { seq: from + k + 2 });
    } catch (err) {
      if ((err as ApiErrorLike).code === '404') return undefined;
      throw new JetStreamLogError(`stream ${name}: cannot read sequence ${from + k + 2}: ${(err as Error).message}`, { cause: err });
    }
  });
  const entries: LogEntry[] = [];
  for (const message of records) {
    const version = message.seq - 1;
    const where = `stream ${name}: sequence ${message.seq}`;
    if (message.subject !== subjects.logEntry) throw new LogCorruptError(`${where}: a message on ${message.subject} among the entries`);
    const { payload, hash } = splitLogRecord(message.data);
    if (hashPayload(payload) !== hash) throw new LogCorruptError(`${where}: entry ${version} fails its checksum`);
    let decoded;
    try {
      decoded = decodeEntryPayload(payload);
    } catch (err) {
      throw new LogCorruptError(`${where}: entry ${version} is malformed`, { cause: err });
    }
    const previous = entries.at(-1);
    if (decoded.version !== version || (previous && decoded.prevHash !== previous.hash)) {
      throw new LogCorruptError(`${where}: hash chain broken at entry ${version}`);
    }
    entries.push({ ...decoded, hash });
  }
  return { entries, head };
}
