/**
 * The NATS Transport: the coordinator and its agents talk over a job's subject tree (nats-subjects.ts) with the
 * same protobuf messages as gRPC (each message is serialized once by proto-loader's serializers), validated on
 * receipt by the decode* functions of messages.ts. docs/protocol.md ("NATS") has the whole design; in short:
 *
 * - Join, FetchLog and FetchSnapshot are requests with a deadline on `rpc.<agent>.<method>`; the app-level token
 *   never travels: each request carries a proof of it (an HMAC, nats-proof.ts), and a failure comes back as a
 *   reply with a Mezo-Status header (a status name of errors.ts). A snapshot is pulled piece by piece.
 * - A Session is emulated: the agent opens it with a request on `rpc.<agent>.session` naming a fresh session id
 *   (the handler may refuse it); then messages flow in order on `up.<agent>.<session>` and
 *   `down.<agent>.<session>`, and either side ends it with an `end` message carrying a status. With a token,
 *   the open fixes a session key and every session message, either way, carries a sequence number and a MAC
 *   under it; each end drops messages whose MAC or sequence number does not check out (counted: forged() on
 *   the coordinator, forgedDownlink() on an agent's transport). A restarted coordinator, which no longer has
 *   the key, signs its end of a session it does not know with the update log's key.
 * - A committed update sent to many sessions as one message object is published once on `updates`; every
 *   agent connection receives it once and hands it to each of its sessions.
 * - Liveness: the agent side ends a session with UNAVAILABLE when nothing arrives on it for `livenessPeriods`
 *   heartbeat periods (the coordinator pings every period), when its connection closes or drops, or when a
 *   coordinator that does not know the session (it restarted) says so in reply to its uplink.
 *
 * A NatsTransport either owns its connections (servers, credentials, TLS: one connection per listen() and per
 * connect(), closed with them) or uses one it is given (`connection`), which many clients — thousands of virtual
 * agents — can share: per connection and job there is one subscription for the broadcast and one wildcard
 * subscription for every agent's downlink, demultiplexed locally by agent and session id.
 */
import { Empty, headers as natsHeaders, nuid, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { STATUS_CODES, TransportError, type StatusName } from './errors.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_SNAPSHOT_CHUNK_BYTES,
  checkAgentId,
  decodeAgentMessage,
  decodeCoordinatorMessage,
  decodeFetchLogRequest,
  decodeFetchLogResponse,
  decodeFetchSnapshotRequest,
  decodeJoinAccepted,
  decodeJoinRequest,
  decodeSnapshotChunk,
  encodeAgentMessage,
  encodeCoordinatorMessage,
  encodeFetchLogRequest,
  encodeFetchLogResponse,
  encodeFetchSnapshotRequest,
  encodeJoinAccepted,
  encodeJoinRequest,
  encodeSnapshotChunk,
  type AgentMessage,
  type CoordinatorMessage,
  type FetchLogRequest,
  type FetchLogResponse,
  type FetchSnapshotRequest,
  type JoinAccepted,
  type JoinRequest,
  type SnapshotChunk,
} from './messages.js';
import { connectNats, type NatsAuth, type NatsTlsFiles } from './nats-auth.js';
import { DEFAULT_SUBJECT_PREFIX, NATS_HEADERS, isSessionId, jobSubjects, type JobSubjects, type RpcMethod } from './nats-subjects.js';
import { loadProtocol } from './proto.js';
import { TrafficMeter, type RefusedTraffic } from './traffic-meter.js';
import {
  NonceCache,
  PROOF_HEADERS,
  PROOF_WINDOW_MS,
  SESSION_END_STATEMENT,
  downlinkMac,
  newNonce,
  requestProof,
  sameMac,
  sessionEndFields,
  sessionKey,
  uplinkMac,
} from './nats-proof.js';
import { LogVerifier } from '../log/log-signature.js';
import type {
  AgentCredentials,
  CallInfo,
  ClientSession,
  CoordinatorClient,
  CoordinatorHandler,
  HealthStatus,
  Listener,
  ServerSession,
  StreamListener,
  Traffic,
  Transport,
} from './transport.js';
import { readLogStream } from '../log/jetstream-log.js';

export interface NatsTransportOptions {
  /** The job whose subject tree this transport uses (agents must know it before they join). */
  jobId: string;
  /** Root of the subject tree (default "mezo"). */
  subjectPrefix?: string;
  /**
   * A connection to use, shared by every listener and client of this transport (and anything else): the
   * transport never closes it. Without it, the transport opens its own from `servers`, `auth` and `tls`.
   */
  connection?: NatsConnection;
  servers?: string | string[];
  auth?: NatsAuth;
  tls?: NatsTlsFiles;
  /** Largest encoded message accepted or sent; larger ones fail with RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxMessageBytes?: number;
  /** Deadline of each request (Join, FetchLog, each snapshot piece, Session open), ms. Default 30 s. */
  callTimeoutMs?: number;
  /** Agent side: a session with nothing from the coordinator for this many heartbeat periods is over. Default 5. */
  livenessPeriods?: number;
  /** Agent side: a fixed liveness window (ms) instead of livenessPeriods × the job's heartbeat period. */
  livenessMs?: number;
  /** Agent side: FetchLog reads entries straight from the job's JetStream log stream (the coordinator when that fails). */
  readLogFromStream?: boolean;
  /**
   * Agent side with a given connection: subscribe to each agent's own downlink rather than one wildcard for all
   * (for a connection whose NATS user may read only its own subjects). Own connections always do.
   */
  perAgentDownlink?: boolean;
}

const DEFAULT_LIVENESS_PERIODS = 5;
/** The liveness window never drops below this, so a busy event loop does not end healthy sessions. */
const MIN_LIVENESS_MS = 1000;
/** Signed ends of unknown sessions per second, and in a burst (a restarted coordinator's whole fleet at once). */
const SIGNED_ENDS_PER_SECOND = 200;
const SIGNED_END_BURST = 10_000;
/** Downlink messages an agent holds while its session open is unanswered (their MACs need the reply's nonce). */
const MAX_EARLY_DOWNLINK = 1024;
/** What a snapshot piece leaves to its header fields and NATS headers within the payload limit. */
const PIECE_OVERHEAD = 1024;

// ---- encoding: the gRPC service's own serializers, so both transports put the same bytes on the wire ----

interface Codec<T> {
  encode(message: T): Buffer;
  decode(bytes: Uint8Array): T;
}

interface Codecs {
  joinRequest: Codec<JoinRequest>;
  joinAccepted: Codec<JoinAccepted>;
  fetchLogRequest: Codec<FetchLogRequest>;
  fetchLogResponse: Codec<FetchLogResponse>;
  snapshotRequest: Codec<FetchSnapshotRequest>;
  snapshotChunk: Codec<SnapshotChunk>;
  agentMessage: Codec<AgentMessage>;
  coordinatorMessage: Codec<CoordinatorMessage>;
}

let codecs: Codecs | undefined;

function getCodecs(): Codecs {
  if (codecs) return codecs;
  const service = loadProtocol().coordinator.service;
  const make = <T>(
    serialize: (value: unknown) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    encode: (message: T) => Record<string, unknown>,
    decode: (wire: unknown) => T,
    what: string,
  ): Codec<T> => ({
    encode: (message) => serialize(encode(message)),
    decode: (bytes) => {
      let wire: unknown;
      try {
        wire = deserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      } catch (err) {
        throw new TransportError('INVALID_ARGUMENT', `${what}: not a valid protobuf message (${(err as Error).message})`, { cause: err });
      }
      return decode(wire);
    },
  });
  const join = service.Join!;
  const fetchLog = service.FetchLog!;
  const snapshot = service.FetchSnapshot!;
  const session = service.Session!;
  codecs = {
    joinRequest: make(join.requestSerialize, join.requestDeserialize, encodeJoinRequest, decodeJoinRequest, 'join'),
    joinAccepted: make(join.responseSerialize, join.responseDeserialize, encodeJoinAccepted, decodeJoinAccepted, 'joinAccepted'),
    fetchLogRequest: make(fetchLog.requestSerialize, fetchLog.requestDeserialize, encodeFetchLogRequest, decodeFetchLogRequest, 'fetchLog'),
    fetchLogResponse: make(fetchLog.responseSerialize, fetchLog.responseDeserialize, encodeFetchLogResponse, decodeFetchLogResponse, 'fetchLogResponse'),
    snapshotRequest: make(snapshot.requestSerialize, snapshot.requestDeserialize, encodeFetchSnapshotRequest, decodeFetchSnapshotRequest, 'fetchSnapshot'),
    snapshotChunk: make(snapshot.responseSerialize, snapshot.responseDeserialize, encodeSnapshotChunk, decodeSnapshotChunk, 'snapshotChunk'),
    agentMessage: make(session.requestSerialize, session.requestDeserialize, encodeAgentMessage, decodeAgentMessage, 'message'),
    coordinatorMessage: make(session.responseSerialize, session.responseDeserialize, encodeCoordinatorMessage, decodeCoordinatorMessage, 'message'),
  };
  return codecs;
}

// ---- statuses across the wire ----

function asTransportError(err: unknown, what = 'NATS call'): TransportError {
  if (err instanceof TransportError) return err;
  const code = (err as { code?: string })?.code;
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  switch (code) {
    case '503':
      return new TransportError('UNAVAILABLE', `${what}: no coordinator is listening`, { cause: err });
    case 'TIMEOUT':
      return new TransportError('DEADLINE_EXCEEDED', message, { cause: err });
    case 'PERMISSIONS_VIOLATION':
      return new TransportError('PERMISSION_DENIED', message, { cause: err });
    case 'AUTHORIZATION_VIOLATION':
    case 'AUTHENTICATION_EXPIRED':
      return new TransportError('UNAUTHENTICATED', message, { cause: err });
    case 'MAX_PAYLOAD_EXCEEDED':
      return new TransportError('RESOURCE_EXHAUSTED', message, { cause: err });
    default:
      return new TransportError('UNAVAILABLE', message, { cause: err });
  }
}

/** Header values are one line of text; long messages are cut. */
const headerText = (text: string): string => text.replace(/[\r\n]+/g, ' ').slice(0, 1000);

function statusHeaders(error: TransportError | undefined, extra?: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  h.set(NATS_HEADERS.status, error?.code ?? 'OK');
  if (error) h.set(NATS_HEADERS.message, headerText(error.message));
  for (const [key, value] of Object.entries(extra ?? {})) h.set(key, value);
  return h;
}

/** The error a reply or an end message carries; undefined for success. */
function statusOf(msg: Msg): TransportError | undefined {
  const code = msg.headers?.get(NATS_HEADERS.status) ?? '';
  if (code === '' || code === 'OK') return undefined;
  const name: StatusName = Object.hasOwn(STATUS_CODES, code) ? (code as StatusName) : 'UNKNOWN';
  return new TransportError(name, msg.headers?.get(NATS_HEADERS.message) || `coordinator replied ${code}`);
}

function endHeaders(error: TransportError | undefined): MsgHdrs {
  return statusHeaders(error, { [NATS_HEADERS.control]: 'end' });
}

/** Waits for `promise` (ignoring its failure) but no longer than `ms`. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

const oversize = (bytes: number, limit: number, what: string): TransportError =>
  new TransportError('RESOURCE_EXHAUSTED', `${what} of ${bytes} bytes is larger than the ${limit}-byte limit`);

/** Cuts chunks into pieces of at most `pieceBytes` data bytes (offsets adjusted), so each fits one NATS message. */
function* pieces(chunks: Iterable<SnapshotChunk>, pieceBytes: number): Generator<SnapshotChunk> {
  for (const chunk of chunks) {
    if (chunk.data.length <= pieceBytes) {
      yield chunk;
      continue;
    }
    for (let at = 0; at < chunk.data.length; at += pieceBytes) {
      yield { ...chunk, offset: chunk.offset + at, data: chunk.data.subarray(at, Math.min(chunk.data.length, at + pieceBytes)) };
    }
  }
}

// ---- the coordinator side ----

interface CachedUpdate {
  bytes: Buffer;
  /** Position of its publication on the listener's clock; sessions opened later did not receive it. */
  publishedAt: number;
  tooLarge?: TransportError;
}

interface Transfer {
  agentId: string;
  iterator: Iterator<SnapshotChunk>;
  next: IteratorResult<SnapshotChunk>;
  timer?: NodeJS.Timeout;
}

class NatsServerSession implements ServerSession {
  private listener: StreamListener<AgentMessage> | undefined;
  private backlog: Uint8Array[] = [];
  ended = false;
  /** With app tokens: the session key every uplink message is authenticated with, and the last sequence used. */
  key: Buffer | undefined;
  lastSeq = 0;
  /** The sequence number of the last downlink message sent under the key. */
  downSeq = 0;
  private closeReported = false;
  private closeReason: TransportError | undefined;

  constructor(
    private readonly owner: NatsListener,
    readonly info: CallInfo,
    readonly id: string,
    readonly openedAt: number,
  ) {}

  send(message: CoordinatorMessage): boolean {
    if (this.ended) return false;
    return this.owner.sendTo(this, message);
  }

  end(error?: TransportError): void {
    if (this.ended) return;
    this.owner.publishEnd(this, error);
    this.finish(error);
  }

  listen(listener: StreamListener<AgentMessage>): void {
    this.listener = listener;
    const waiting = this.backlog;
    this.backlog = [];
    waiting.forEach((bytes) => this.deliver(bytes));
    if (this.ended) this.report();
  }

  /** A message on the uplink, in order. */
  receive(bytes: Uint8Array): void {
    if (this.ended) return;
    if (this.listener) this.deliver(bytes);
    else this.backlog.push(bytes);
  }

  private deliver(bytes: Uint8Array): void {
    if (this.ended) return;
    let message: AgentMessage;
    try {
      message = getCodecs().agentMessage.decode(bytes);
    } catch (err) {
      this.listener!.invalid(asTransportError(err));
      return;
    }
    this.listener!.message(message);
  }

  /** The agent ended the session (or it ended here): report it once. */
  finish(error?: TransportError): void {
    if (!this.ended) {
      this.ended = true;
      this.backlog = [];
      this.closeReason = error;
      this.owner.forget(this);
    }
    if (this.listener) this.report();
  }

  private report(): void {
    if (this.closeReported) return;
    this.closeReported = true;
    this.listener!.closed(this.closeReason);
  }
}

class NatsListener implements Listener {
  readonly address: string;
  private readonly codecs = getCodecs();
  private readonly sessions = new Map<string, NatsServerSession>();
  /** Per agent only for agents the coordinator accepted a call from (traffic-meter.ts). */
  private readonly meter = new TrafficMeter();
  /** Nonces of verified requests inside the proof window (replays are refused). */
  private readonly nonces = new NonceCache();
  private forgedMessages = 0;
  /** Budget of signed ends for unknown sessions (publishUnknownSessionEnd). */
  private readonly signedEnds = { tokens: SIGNED_END_BURST, at: performance.now() };
  /** Update messages already published on the broadcast subject, by message object (as gRPC caches serialisation). */
  private readonly published = new WeakMap<CoordinatorMessage, CachedUpdate>();
  private readonly transfers = new Map<string, Transfer>();
  private readonly subscriptions: Subscription[] = [];
  private clock = 0;
  private health: HealthStatus = 'SERVING';
  private inFlight = 0;
  private idle: Array<() => void> = [];
  private closing: Promise<void> | undefined;
  private statusWatch: { stop(): void } | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly handler: CoordinatorHandler,
    private readonly subjects: JobSubjects,
    private readonly maxBytes: number,
    private readonly callTimeoutMs: number,
  ) {
    this.address = `nats://${nc.getServer()}/${subjects.root}`;
    const subscribe = (subject: string, onMessage: (msg: Msg) => void): void => {
      this.subscriptions.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            try {
              onMessage(msg);
            } catch {
              // A handler fault must not take the subscription down; the call times out on the agent side.
            }
          },
        }),
      );
    };
    subscribe(subjects.rpcAll, (msg) => this.onRequest(msg));
    subscribe(subjects.upAll, (msg) => this.onUplink(msg));
    subscribe(subjects.health, (msg) => msg.respond(Buffer.from(this.health)));
    this.watchConnection();
  }

  /** Messages may be lost while the connection is down, so every session ends and its agent re-joins. */
  private watchConnection(): void {
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.statusWatch = { stop: () => status.stop?.() };
    void (async () => {
      for await (const event of status) {
        if (event.type === 'disconnect') this.endAll(new TransportError('UNAVAILABLE', 'the coordinator lost its NATS connection'));
      }
    })().catch(() => undefined);
    void this.nc.closed().then(() => this.endAll(new TransportError('UNAVAILABLE', 'the coordinator\'s NATS connection closed')));
  }

  private endAll(error: TransportError): void {
    for (const session of [...this.sessions.values()]) session.end(error);
  }

  traffic(): ReadonlyMap<string, Traffic> {
    return this.meter.snapshot();
  }

  refused(): RefusedTraffic {
    return this.meter.refused();
  }

  /** Uplink messages dropped because their MAC, or their sequence number, did not check out (forged or replayed). */
  forged(): number {
    return this.forgedMessages;
  }

  /**
   * Checks a request's proof (nats-proof.ts) against the token the agent must hold; the request's nonce when it
   * holds, undefined when it does not (missing, stale, replayed or wrong: the caller is then refused as one
   * without credentials).
   */
  private verifyRequest(msg: Msg, agentId: string, method: string, secret: string): string | undefined {
    const h = msg.headers;
    const time = h?.get(PROOF_HEADERS.time) ?? '';
    const nonce = h?.get(PROOF_HEADERS.nonce) ?? '';
    const proof = h?.get(PROOF_HEADERS.proof) ?? '';
    const at = Number(time);
    const now = Date.now();
    if (!/^\d{1,15}$/.test(time) || Math.abs(now - at) > PROOF_WINDOW_MS || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) return undefined;
    const fields = {
      root: this.subjects.root,
      agentId,
      method,
      time,
      nonce,
      session: h?.get(NATS_HEADERS.session) ?? '',
      transfer: h?.get(NATS_HEADERS.transfer) ?? '',
      control: h?.get(NATS_HEADERS.control) ?? '',
    };
    if (!sameMac(proof, requestProof(secret, fields, msg.data))) return undefined;
    return this.nonces.remember(`${agentId}\n${nonce}`, at + PROOF_WINDOW_MS, now) ? nonce : undefined;
  }

  /** The coordinator accepted a call of the agent: its request counts for it from now on. */
  private accepted(agentId: string, bytesUp: number): void {
    this.meter.admit(agentId);
    this.meter.up(agentId, bytesUp);
  }

  setHealth(status: HealthStatus): void {
    this.health = status;
  }

  forget(session: NatsServerSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
  }

  private publish(subject: string, bytes: Uint8Array, headers?: MsgHdrs): TransportError | undefined {
    try {
      this.nc.publish(subject, bytes, headers ? { headers } : undefined);
      return undefined;
    } catch (err) {
      return asTransportError(err, `publish on ${subject}`);
    }
  }

  publishEnd(session: NatsServerSession, error: TransportError | undefined): void {
    this.publish(this.subjects.down(session.info.agentId, session.id), Empty, this.downlinkHeaders(session, Empty, endHeaders(error)));
  }

  /**
   * With a session key, the next sequence number and the downlink MAC (nats-proof.ts) on `headers` (new ones
   * when absent); without one, `headers` as given.
   */
  private downlinkHeaders(session: NatsServerSession, bytes: Uint8Array, headers?: MsgHdrs): MsgHdrs | undefined {
    if (!session.key) return headers;
    const h = headers ?? natsHeaders();
    const seq = ++session.downSeq;
    h.set(PROOF_HEADERS.seq, String(seq));
    h.set(PROOF_HEADERS.mac, downlinkMac(session.key, seq, h.get(NATS_HEADERS.control) ?? '', h.get(NATS_HEADERS.status) ?? '', h.get(NATS_HEADERS.message) ?? '', bytes));
    return h;
  }

  /**
   * Tells the agent of a session this coordinator does not know (it restarted, or ended it) that it is over. The
   * session key is gone, so the end is signed with the log's key instead, bound to the session and the time
   * (nats-proof.ts); an agent with a session key takes no unsigned end. Signing costs CPU and anyone can ask for
   * it by publishing on a made-up session, so signed ends are rate-limited: past the budget nothing is sent, and
   * the agent's liveness window ends the session instead.
   */
  private publishUnknownSessionEnd(agentId: string, sessionId: string): void {
    const error = new TransportError('UNAVAILABLE', `the coordinator has no session ${sessionId} for agent ${agentId} (it may have restarted)`);
    const h = endHeaders(error);
    if (this.handler.secretOf?.(agentId) !== undefined) {
      const now = performance.now();
      const budget = this.signedEnds;
      budget.tokens = Math.min(SIGNED_END_BURST, budget.tokens + ((now - budget.at) / 1000) * SIGNED_ENDS_PER_SECOND);
      budget.at = now;
      if (budget.tokens < 1) return;
      const time = String(Date.now());
      const signature = this.handler.signStatement?.(SESSION_END_STATEMENT, sessionEndFields(this.subjects.root, agentId, sessionId, error.code, h.get(NATS_HEADERS.message), time));
      if (signature === undefined) return; // unsigned log: an agent with a session key would drop it anyway
      budget.tokens -= 1;
      h.set(PROOF_HEADERS.time, time);
      h.set(PROOF_HEADERS.signature, signature);
    }
    this.publish(this.subjects.down(agentId, sessionId), Empty, h);
  }

  sendTo(session: NatsServerSession, message: CoordinatorMessage): boolean {
    const agentId = session.info.agentId;
    if (message.kind === 'update') {
      let cached = this.published.get(message);
      if (!cached) {
        const bytes = this.codecs.coordinatorMessage.encode(message);
        cached = { bytes, publishedAt: ++this.clock };
        if (bytes.length > this.maxBytes) cached.tooLarge = oversize(bytes.length, this.maxBytes, 'update');
        else {
          const failed = this.publish(this.subjects.updates, bytes);
          if (failed) cached.tooLarge = failed;
        }
        this.published.set(message, cached);
      } else if (!cached.tooLarge && cached.publishedAt < session.openedAt) {
        // Published before this session existed: its agent never saw it on the broadcast.
        const failed = this.publish(this.subjects.down(agentId, session.id), cached.bytes, this.downlinkHeaders(session, cached.bytes));
        if (failed) {
          session.end(failed);
          return false;
        }
      }
      if (cached.tooLarge) {
        session.end(cached.tooLarge);
        return true;
      }
      // Each agent downloads the broadcast once: count it for every session it is sent to.
      this.meter.down(agentId, cached.bytes.length);
      return true;
    }
    const bytes = this.codecs.coordinatorMessage.encode(message);
    if (bytes.length > this.maxBytes) {
      session.end(oversize(bytes.length, this.maxBytes, 'message'));
      return true;
    }
    const failed = this.publish(this.subjects.down(agentId, session.id), bytes, this.downlinkHeaders(session, bytes));
    if (failed) {
      session.end(failed);
      return false;
    }
    this.meter.down(agentId, bytes.length);
    return true;
  }

  private onUplink(msg: Msg): void {
    const parsed = this.subjects.parse(msg.subject, 'up');
    if (!parsed) return;
    const { agentId, last: sessionId } = parsed;
    const session = this.sessions.get(sessionId);
    const isEnd = msg.headers?.get(NATS_HEADERS.control) === 'end';
    if (session && session.info.agentId === agentId && session.key && !this.authenticUplink(session, msg)) {
      // Not from the agent (or a replay): dropped unheard, so a forger can neither submit nor end anything.
      this.forgedMessages++;
      this.meter.refuse(msg.data.length);
      return;
    }
    if (!session || session.info.agentId !== agentId) {
      // A session this coordinator does not know (it restarted, or ended the session): tell the agent, which
      // re-joins. An end message for it needs no answer.
      if (!isEnd && isSessionId(sessionId)) this.publishUnknownSessionEnd(agentId, sessionId);
      return;
    }
    if (isEnd) {
      session.finish(statusOf(msg) ?? undefined);
      return;
    }
    if (msg.data.length > this.maxBytes) {
      session.end(oversize(msg.data.length, this.maxBytes, 'message'));
      return;
    }
    this.meter.up(agentId, msg.data.length);
    session.receive(msg.data);
  }

  /** Whether an uplink message carries the session's next sequence number and a valid MAC under its key. */
  private authenticUplink(session: NatsServerSession, msg: Msg): boolean {
    if (msg.data.length > this.maxBytes) return false;
    const h = msg.headers;
    const seqText = h?.get(PROOF_HEADERS.seq) ?? '';
    const seq = Number(seqText);
    if (!/^\d{1,15}$/.test(seqText) || seq <= session.lastSeq) return false;
    const mac = uplinkMac(session.key!, seq, h?.get(NATS_HEADERS.control) ?? '', h?.get(NATS_HEADERS.status) ?? '', msg.data);
    if (!sameMac(h?.get(PROOF_HEADERS.mac) ?? '', mac)) return false;
    session.lastSeq = seq;
    return true;
  }

  private respond(msg: Msg, bytes: Uint8Array, agentId: string, extra?: Record<string, string>): void {
    if (bytes.length > this.maxBytes) {
      this.respondError(msg, oversize(bytes.length, this.maxBytes, 'response'));
      return;
    }
    this.meter.down(agentId, bytes.length);
    try {
      msg.respond(bytes, extra ? { headers: statusHeaders(undefined, extra) } : undefined);
    } catch (err) {
      this.respondError(msg, asTransportError(err, 'reply'));
    }
  }

  private respondError(msg: Msg, error: unknown): void {
    try {
      msg.respond(Empty, { headers: statusHeaders(asTransportError(error)) });
    } catch {
      // The agent's connection is gone or the reply subject is refused; its request times out.
    }
  }

  /** Runs an async call, counted so close() can wait for calls in flight. */
  private track(work: () => Promise<void>): void {
    this.inFlight++;
    void work().finally(() => {
      if (--this.inFlight === 0) {
        const waiting = this.idle;
        this.idle = [];
        waiting.forEach((wake) => wake());
      }
    });
  }

  private onRequest(msg: Msg): void {
    if (!msg.reply) return;
    const parsed = this.subjects.parse(msg.subject, 'rpc');
    if (!parsed) {
      this.respondError(msg, new TransportError('INVALID_ARGUMENT', `not a request subject of this job: ${msg.subject}`));
      return;
    }
    if (this.closing) {
      this.respondError(msg, new TransportError('UNAVAILABLE', 'coordinator shutting down'));
      return;
    }
    const method = parsed.last as RpcMethod;
    let info: CallInfo;
    let requestNonce: string | undefined;
    try {
      const agentId = checkAgentId(parsed.agentId, 'subject agent id');
      // The token never travels: the handler gets it only when the request proves it (else '', which it refuses
      // and counts as a failed authentication).
      const secret = this.handler.secretOf?.(agentId);
      requestNonce = secret === undefined ? undefined : this.verifyRequest(msg, agentId, parsed.last, secret);
      info = { agentId, token: requestNonce === undefined ? '' : secret!, peer: `nats:${agentId}` };
    } catch (err) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
      return;
    }
    if (msg.data.length > this.maxBytes) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, oversize(msg.data.length, this.maxBytes, 'request'));
      return;
    }
    switch (method) {
      case 'join':
        this.track(async () => {
          try {
            const request = this.codecs.joinRequest.decode(msg.data);
            // The subject names the agent (and NATS permissions bind it to a user): the request must agree.
            if (request.agentId !== info.agentId) {
              throw new TransportError('PERMISSION_DENIED', `join.agentId: ${request.agentId} joined on the subject of agent ${info.agentId}`);
            }
            const accepted = await this.handler.join({ ...request, token: info.token }, info.peer);
            this.accepted(info.agentId, msg.data.length);
            this.respond(msg, this.codecs.joinAccepted.encode(accepted), info.agentId);
          } catch (err) {
            this.meter.refuse(msg.data.length);
            this.respondError(msg, err);
          }
        });
        return;
      case 'fetchlog':
        this.track(async () => {
          try {
            const response = await this.handler.fetchLog(this.codecs.fetchLogRequest.decode(msg.data), info);
            this.accepted(info.agentId, msg.data.length);
            this.respond(msg, this.codecs.fetchLogResponse.encode(response), info.agentId);
          } catch (err) {
            this.meter.refuse(msg.data.length);
            this.respondError(msg, err);
          }
        });
        return;
      case 'snapshot':
        this.track(() => this.onSnapshot(msg, info));
        return;
      case 'session':
        this.openSession(msg, info, requestNonce);
        return;
      default:
        this.meter.refuse(msg.data.length);
        this.respondError(msg, new TransportError('UNIMPLEMENTED', `unknown method ${parsed.last}`));
    }
  }

  /** Largest data slice of one snapshot piece: within the size limit and the server's payload limit. */
  private pieceBytes(): number {
    const serverLimit = this.nc.info?.max_payload ?? 1024 * 1024;
    const limit = Math.min(this.maxBytes, serverLimit, MAX_SNAPSHOT_CHUNK_BYTES + PIECE_OVERHEAD) - PIECE_OVERHEAD;
    return Math.max(4, limit - (limit % 4));
  }

  private async onSnapshot(msg: Msg, info: CallInfo): Promise<void> {
    try {
      const transferId = msg.headers?.get(NATS_HEADERS.transfer) ?? '';
      let transfer: Transfer | undefined;
      if (transferId === '') {
        const chunks = await this.handler.fetchSnapshot(this.codecs.snapshotRequest.decode(msg.data), info);
        const iterator = pieces(chunks, this.pieceBytes())[Symbol.iterator]();
        transfer = { agentId: info.agentId, iterator, next: iterator.next() };
        if (transfer.next.done) throw new TransportError('NOT_FOUND', 'fetchSnapshot: the snapshot has no data');
      } else {
        transfer = this.transfers.get(transferId);
        if (!transfer || transfer.agentId !== info.agentId) throw new TransportError('NOT_FOUND', `snapshot transfer ${transferId} is unknown or expired`);
        if (msg.headers?.get(NATS_HEADERS.control) === 'cancel') {
          this.endTransfer(transferId);
          msg.respond(Empty);
          return;
        }
      }
      this.accepted(info.agentId, msg.data.length);
      const id = transferId || nuid.next();
      const piece = transfer.next.value as SnapshotChunk;
      transfer.next = transfer.iterator.next();
      const more = !transfer.next.done;
      clearTimeout(transfer.timer);
      if (more) {
        transfer.timer = setTimeout(() => this.endTransfer(id), this.callTimeoutMs);
        transfer.timer.unref();
        this.transfers.set(id, transfer);
      } else this.transfers.delete(id);
      this.respond(msg, this.codecs.snapshotChunk.encode(piece), info.agentId, { [NATS_HEADERS.transfer]: id, [NATS_HEADERS.more]: more ? '1' : '0' });
    } catch (err) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
    }
  }

  private endTransfer(id: string): void {
    const transfer = this.transfers.get(id);
    if (!transfer) return;
    clearTimeout(transfer.timer);
    transfer.iterator.return?.();
    this.transfers.delete(id);
  }

  private openSession(msg: Msg, info: CallInfo, requestNonce: string | undefined): void {
    const sessionId = msg.headers?.get(NATS_HEADERS.session) ?? '';
    if (!isSessionId(sessionId)) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, new TransportError('INVALID_ARGUMENT', `${NATS_HEADERS.session}: must be 1-64 letters and digits`));
      return;
    }
    if (this.sessions.has(sessionId)) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, new TransportError('ALREADY_EXISTS', `session ${sessionId} is already open`));
      return;
    }
    const session = new NatsServerSession(this, info, sessionId, ++this.clock);
    const extra: Record<string, string> = {};
    if (requestNonce !== undefined) {
      // Proven with the token: from now on only messages under the session key count as the agent's, and the
      // agent takes only messages under it as the coordinator's. Keyed before the handler sees the session,
      // since it may send on it at once (those messages reach the agent before this reply, which it holds back).
      const sessionNonce = newNonce();
      session.key = sessionKey(info.token, this.subjects.root, info.agentId, sessionId, requestNonce, sessionNonce);
      extra[PROOF_HEADERS.sessionNonce] = sessionNonce;
    }
    this.sessions.set(sessionId, session);
    try {
      this.handler.session(session);
    } catch (err) {
      this.sessions.delete(sessionId);
      session.ended = true;
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
      return;
    }
    this.accepted(info.agentId, msg.data.length);
    try {
      msg.respond(Empty, { headers: statusHeaders(undefined, extra) });
    } catch (err) {
      session.end(asTransportError(err, 'session open reply'));
    }
  }

  close(graceMs = 2000): Promise<void> {
    this.closing ??= (async () => {
      this.health = 'NOT_SERVING';
      this.endAll(new TransportError('UNAVAILABLE', 'coordinator shutting down'));
      for (const sub of this.subscriptions) sub.unsubscribe();
      for (const id of [...this.transfers.keys()]) this.endTransfer(id);
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          this.idle.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      this.statusWatch?.stop();
      if (this.nc.isClosed()) return;
      // The end messages go out before the connection (if it is ours) closes; a server that is gone (the
      // connection reconnecting) must not hold the shutdown up.
      await settleWithin(this.nc.flush(), graceMs);
      if (this.owned) await this.nc.close().catch(() => undefined);
    })();
    return this.closing;
  }
}

// ---- the agent side ----

/** One connection's view of one job: the shared subscriptions and the sessions they feed. */
class ClientHub {
  private readonly sessions = new Map<string, NatsClientSession>();
  private broadcast: Subscription | undefined;
  private wildcard: Subscription | undefined;
  private readonly perAgent = new Map<string, { sub: Subscription; users: number }>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweepMs = Infinity;
  private lastSweep = 0;
  private statusWatch: { stop(): void } | undefined;
  private readonly codecs = getCodecs();

  constructor(
    private readonly nc: NatsConnection,
    readonly subjects: JobSubjects,
    private readonly perAgentDownlink: boolean,
    readonly maxBytes: number,
    private readonly onEmpty: () => void,
  ) {}

  private subscribe(subject: string, onMessage: (msg: Msg) => void): Subscription {
    return this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          // A refused subscription (permissions): the sessions it would feed cannot work.
          this.endAll(asTransportError(err, `subscription to ${subject}`));
          return;
        }
        try {
          onMessage(msg);
        } catch {
          // A listener's fault must not reach the connection's reader (and the other sessions on it).
        }
      },
    });
  }

  /** Registers a session before its open request goes out, so nothing sent to it can be missed. */
  attach(session: NatsClientSession): void {
    if (this.sessions.size === 0) this.start();
    this.sessions.set(session.id, session);
    if (this.perAgentDownlink) {
      const held = this.perAgent.get(session.agentId);
      if (held) held.users++;
      else this.perAgent.set(session.agentId, { sub: this.subscribe(this.subjects.downOf(session.agentId), (m) => this.onDown(m)), users: 1 });
    } else {
      this.wildcard ??= this.subscribe(this.subjects.downAll, (m) => this.onDown(m));
    }
    const sweepMs = Math.max(10, Math.floor(session.livenessMs / 5));
    if (sweepMs < this.sweepMs) {
      this.sweepMs = sweepMs;
      if (this.sweeper) clearInterval(this.sweeper);
      this.lastSweep = Date.now();
      this.sweeper = setInterval(() => this.sweep(), sweepMs);
      this.sweeper.unref();
    }
  }

  detach(session: NatsClientSession): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    if (this.perAgentDownlink) {
      const held = this.perAgent.get(session.agentId);
      if (held && --held.users === 0) {
        this.perAgent.delete(session.agentId);
        if (!this.nc.isClosed()) held.sub.unsubscribe();
      }
    }
    if (this.sessions.size === 0) this.stop();
  }

  private start(): void {
    this.broadcast = this.subscribe(this.subjects.updates, (m) => this.onBroadcast(m));
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.statusWatch = { stop: () => status.stop?.() };
    void (async () => {
      for await (const event of status) {
        // Messages may have been lost while disconnected: the sessions are no longer whole.
        if (event.type === 'disconnect') this.endAll(new TransportError('UNAVAILABLE', 'the NATS connection dropped'));
      }
    })().catch(() => undefined);
  }

  private stop(): void {
    const open = !this.nc.isClosed();
    if (open) this.broadcast?.unsubscribe();
    if (open) this.wildcard?.unsubscribe();
    this.broadcast = undefined;
    this.wildcard = undefined;
    this.statusWatch?.stop();
    this.statusWatch = undefined;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.sweepMs = Infinity;
    this.onEmpty();
  }

  endAll(error: TransportError): void {
    for (const session of [...this.sessions.values()]) session.closeWith(error);
  }

  private sweep(): void {
    const now = Date.now();
    const stalled = now - this.lastSweep > 2 * this.sweepMs + 100;
    this.lastSweep = now;
    if (stalled) {
      // This process was not running (a long task on the event loop): the silence is ours, not the
      // coordinator's. Start every window afresh rather than end healthy sessions.
      for (const session of this.sessions.values()) session.lastHeard = now;
      return;
    }
    // Decide after the poll phase has read what already arrived on the socket.
    setImmediate(() => this.expire());
  }

  private expire(): void {
    const now = Date.now();
    for (const session of [...this.sessions.values()]) {
      if (now - session.lastHeard > session.livenessMs) {
        session.abort(new TransportError('UNAVAILABLE', `nothing from the coordinator for ${session.livenessMs} ms`));
      }
    }
  }

  private onDown(msg: Msg): void {
    const parsed = this.subjects.parse(msg.subject, 'down');
    if (!parsed) return;
    const session = this.sessions.get(parsed.last);
    if (!session || session.agentId !== parsed.agentId) return;
    session.onDown(msg, this.maxBytes);
  }

  /** Decoded once, handed to every session on this connection (each agent ignores updates it holds). */
  private onBroadcast(msg: Msg): void {
    if (msg.data.length > this.maxBytes) {
      for (const session of [...this.sessions.values()]) session.abort(oversize(msg.data.length, this.maxBytes, 'update'));
      return;
    }
    let message: CoordinatorMessage;
    try {
      message = this.codecs.coordinatorMessage.decode(msg.data);
    } catch (err) {
      const error = asTransportError(err);
      for (const session of [...this.sessions.values()]) session.invalid(error);
      return;
    }
    for (const session of [...this.sessions.values()]) session.deliver(message);
  }
}

/** Hubs per connection and job (and downlink mode), so clients on one connection share subscriptions. */
const hubs = new WeakMap<NatsConnection, Map<string, ClientHub>>();

function hubFor(nc: NatsConnection, subjects: JobSubjects, perAgent: boolean, maxBytes: number): ClientHub {
  let byKey = hubs.get(nc);
  if (!byKey) {
    byKey = new Map();
    hubs.set(nc, byKey);
    void nc.closed().then(() => {
      for (const hub of byKey!.values()) hub.endAll(new TransportError('UNAVAILABLE', 'the NATS connection closed'));
    });
  }
  const key = `${subjects.root}|${perAgent ? 'agent' : 'all'}|${maxBytes}`;
  let hub = byKey.get(key);
  if (!hub) {
    hub = new ClientHub(nc, subjects, perAgent, maxBytes, () => byKey!.delete(key));
    byKey.set(key, hub);
  }
  return hub;
}

class NatsClientSession implements ClientSession {
  readonly id = nuid.next();
  lastHeard = Date.now();
  private state: 'opening' | 'open' | 'closed' = 'opening';
  private queued: Buffer[] = [];
  private hub: ClientHub | undefined;
  private nc: NatsConnection | undefined;
  /** With a token: the session key (nats-proof.ts) the uplink is authenticated with, and the last sequence used. */
  private key: Buffer | undefined;
  private seq = 0;
  /** Ended while the open was unanswered, with a token: the end goes out under the session key once it is known. */
  private pendingEnd: TransportError | undefined;
  /** The sequence number of the last downlink message taken (each must be above it). */
  private downSeq = 0;
  /** Downlink messages that came while the open was unanswered, with a token: checked once the key is known. */
  private early: Msg[] = [];

  constructor(
    private readonly client: NatsCoordinatorClient,
    readonly agentId: string,
    private readonly listener: StreamListener<CoordinatorMessage>,
    readonly livenessMs: number,
  ) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Subscribes (through the hub) first, then asks the coordinator to open the session. */
  start(nc: NatsConnection, hub: ClientHub, timeoutMs: number): void {
    if (this.closed) return;
    this.nc = nc;
    this.hub = hub;
    hub.attach(this);
    this.lastHeard = Date.now();
    const { headers: h, nonce } = this.client.proofHeaders('session', Empty, { [NATS_HEADERS.session]: this.id });
    nc.request(hub.subjects.rpc(this.agentId, 'session'), Empty, { timeout: timeoutMs, headers: h }).then(
      (reply) => {
        const refused = statusOf(reply);
        const sessionNonce = reply.headers?.get(PROOF_HEADERS.sessionNonce) ?? '';
        // The coordinator checked the token's proof and keyed the session: so does this end.
        if (!refused && nonce !== undefined && sessionNonce !== '') this.key = sessionKey(this.client.token, hub.subjects.root, this.agentId, this.id, nonce, sessionNonce);
        if (this.closed) {
          if (!refused && this.pendingEnd && !nc.isClosed()) this.publish(Empty, endHeaders(this.pendingEnd));
          return;
        }
        if (refused) {
          this.closeWith(refused);
          return;
        }
        this.state = 'open';
        this.lastHeard = Date.now();
        // Uplink sent before the coordinator accepted goes out now, in order.
        const waiting = this.queued;
        this.queued = [];
        for (const bytes of waiting) if (!this.publish(bytes)) return;
        // So does the downlink that came before this reply, now that its MACs can be checked.
        const early = this.early;
        this.early = [];
        for (const down of early) this.onDown(down, hub.maxBytes);
      },
      // No answer in time: the coordinator may still have opened it, so say it is over.
      (err: unknown) => this.abort(asTransportError(err, 'session open')),
    );
  }

  private publish(bytes: Uint8Array, headers?: MsgHdrs): boolean {
    if (this.key) {
      headers ??= natsHeaders();
      const seq = ++this.seq;
      headers.set(PROOF_HEADERS.seq, String(seq));
      headers.set(PROOF_HEADERS.mac, uplinkMac(this.key, seq, headers.get(NATS_HEADERS.control) ?? '', headers.get(NATS_HEADERS.status) ?? '', bytes));
    }
    try {
      this.nc!.publish(this.hub!.subjects.up(this.agentId, this.id), bytes, headers ? { headers } : undefined);
      return true;
    } catch (err) {
      if (!headers) this.closeWith(asTransportError(err, 'session send'));
      return false;
    }
  }

  send(message: AgentMessage): boolean {
    if (this.closed) return false;
    const bytes = getCodecs().agentMessage.encode(message);
    const limit = this.client.maxBytes;
    if (bytes.length > limit) {
      this.abort(oversize(bytes.length, limit, 'message'));
      return true;
    }
    if (this.state === 'opening') this.queued.push(bytes);
    else this.publish(bytes);
    return true;
  }

  end(): void {
    this.abort(new TransportError('CANCELLED', 'agent ended the session'));
  }

  /** Ends the session here and tells the coordinator why. */
  abort(error: TransportError): void {
    if (this.closed) return;
    if (this.nc && !this.nc.isClosed()) {
      // With a token the end must carry the session key's MAC, known once the open is answered: it waits for that.
      if (this.state === 'opening' && this.client.token !== '') this.pendingEnd = error;
      // Otherwise sent even while opening: it follows the open request, so the coordinator sees it after the open.
      else this.publish(Empty, endHeaders(error));
    }
    this.closeWith(error);
  }

  deliver(message: CoordinatorMessage): void {
    if (!this.closed) this.listener.message(message);
  }

  /**
   * A message on this session's downlink. With a session key only the coordinator's count: the next sequence
   * number and a valid MAC, or (an end only) the log key's signature of a restarted coordinator's end for this
   * session. Anything else — forged, replayed, garbled — is dropped and counted, and does not even count as a
   * sign of life.
   */
  onDown(msg: Msg, maxBytes: number): void {
    if (this.closed) return;
    if (this.state === 'opening' && this.client.token !== '') {
      if (this.early.length < MAX_EARLY_DOWNLINK) this.early.push(msg);
      else this.client.countForged();
      return;
    }
    const isEnd = msg.headers?.get(NATS_HEADERS.control) === 'end';
    if (this.key && !this.authenticDown(msg) && !(isEnd && this.signedEnd(msg))) {
      this.client.countForged();
      return;
    }
    if (isEnd) {
      this.closeWith(statusOf(msg));
      return;
    }
    this.lastHeard = Date.now();
    if (msg.data.length > maxBytes) {
      this.abort(oversize(msg.data.length, maxBytes, 'message'));
      return;
    }
    let message: CoordinatorMessage;
    try {
      message = getCodecs().coordinatorMessage.decode(msg.data);
    } catch (err) {
      this.invalid(asTransportError(err));
      return;
    }
    this.deliver(message);
  }

  private authenticDown(msg: Msg): boolean {
    const h = msg.headers;
    const seqText = h?.get(PROOF_HEADERS.seq) ?? '';
    const seq = Number(seqText);
    if (!/^\d{1,15}$/.test(seqText) || seq <= this.downSeq) return false;
    const mac = downlinkMac(this.key!, seq, h?.get(NATS_HEADERS.control) ?? '', h?.get(NATS_HEADERS.status) ?? '', h?.get(NATS_HEADERS.message) ?? '', msg.data);
    if (!sameMac(h?.get(PROOF_HEADERS.mac) ?? '', mac)) return false;
    this.downSeq = seq;
    return true;
  }

  /** Whether an end is a coordinator's signed "no such session" for this very session, made within the window. */
  private signedEnd(msg: Msg): boolean {
    const publicKey = this.client.logPublicKey;
    const h = msg.headers;
    const time = h?.get(PROOF_HEADERS.time) ?? '';
    if (publicKey === undefined || !/^\d{1,15}$/.test(time) || Math.abs(Date.now() - Number(time)) > PROOF_WINDOW_MS || msg.data.length > 0) return false;
    const fields = sessionEndFields(this.hub!.subjects.root, this.agentId, this.id, h?.get(NATS_HEADERS.status) ?? '', h?.get(NATS_HEADERS.message) ?? '', time);
    return LogVerifier.for(publicKey).verifyStatement(SESSION_END_STATEMENT, fields, h?.get(PROOF_HEADERS.signature) ?? '');
  }

  invalid(error: TransportError): void {
    if (!this.closed) this.listener.invalid(error);
  }

  /** Reported on a later turn of the event loop, as gRPC reports a stream's end. */
  closeWith(error: TransportError | undefined): void {
    if (this.closed) return;
    this.state = 'closed';
    this.queued = [];
    this.hub?.detach(this);
    this.client.forget(this);
    setImmediate(() => this.listener.closed(error));
  }
}

class NatsCoordinatorClient implements CoordinatorClient {
  readonly maxBytes: number;
  private readonly sessions = new Set<NatsClientSession>();
  private readonly ready: Promise<NatsConnection>;
  private heartbeatMs = 0;
  /**
   * The log key the last Join presented (the agent refuses a Join whose key is not the one it pinned): reading
   * the stream directly, only records it signed count, and a session end without a MAC needs its signature.
   */
  logPublicKey: string | undefined;
  private closed = false;
  private readonly codecs = getCodecs();

  constructor(
    private readonly options: NatsTransportOptions,
    private readonly subjects: JobSubjects,
    private readonly credentials: AgentCredentials,
    private readonly counters: DownlinkCounters = { forged: 0 },
  ) {
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    let invalid: TransportError | undefined;
    try {
      checkAgentId(credentials.agentId, 'credentials.agentId');
    } catch (err) {
      invalid = asTransportError(err);
    }
    // A bad id fails the calls (as with the other transports), not connect() itself.
    if (invalid) this.ready = Promise.reject(invalid);
    else if (options.connection) this.ready = Promise.resolve(options.connection);
    else {
      this.ready = connectNats({
        servers: options.servers ?? 'nats://127.0.0.1:4222',
        ...(options.auth ? { auth: options.auth } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
        name: `mezo-agent ${credentials.agentId}`,
        inboxPrefix: subjects.inboxPrefix(credentials.agentId),
        // A lost connection ends this client; the agent reconnects with a new one (as with a gRPC channel).
        reconnect: false,
      });
    }
    this.ready.catch(() => undefined);
  }

  private get timeoutMs(): number {
    return this.options.callTimeoutMs ?? 30_000;
  }

  private async connection(): Promise<NatsConnection> {
    if (this.closed) throw new TransportError('CANCELLED', 'the client is closed');
    const nc = await this.ready;
    if (nc.isClosed()) throw new TransportError('UNAVAILABLE', 'the NATS connection is closed');
    return nc;
  }

  get token(): string {
    return this.credentials.token;
  }

  /** A downlink message of one of this client's sessions failed its MAC, sequence or signature and was dropped. */
  countForged(): void {
    this.counters.forged++;
  }

  /** Downlink messages dropped as not the coordinator's (forged, replayed, garbled), over this client's sessions. */
  forged(): number {
    return this.counters.forged;
  }

  /**
   * Headers of a request: `extra`, and with a token the proof of it (nats-proof.ts) — never the token itself.
   * `nonce` is the proof's nonce (undefined without a token).
   */
  proofHeaders(method: RpcMethod, body: Uint8Array, extra: Record<string, string> = {}): { headers: MsgHdrs; nonce: string | undefined } {
    const h = natsHeaders();
    for (const [key, value] of Object.entries(extra)) h.set(key, value);
    const token = this.credentials.token;
    if (token === '') return { headers: h, nonce: undefined };
    const time = String(Date.now());
    const nonce = newNonce();
    const fields = {
      root: this.subjects.root,
      agentId: this.credentials.agentId,
      method,
      time,
      nonce,
      session: extra[NATS_HEADERS.session] ?? '',
      transfer: extra[NATS_HEADERS.transfer] ?? '',
      control: extra[NATS_HEADERS.control] ?? '',
    };
    h.set(PROOF_HEADERS.time, time);
    h.set(PROOF_HEADERS.nonce, nonce);
    h.set(PROOF_HEADERS.proof, requestProof(token, fields, body));
    return { headers: h, nonce };
  }

  private async request(method: RpcMethod, bytes: Uint8Array, extra?: Record<string, string>): Promise<Msg> {
    const nc = await this.connection();
    if (bytes.length > this.maxBytes) throw oversize(bytes.length, this.maxBytes, 'request');
    const h = this.proofHeaders(method, bytes, extra).headers;
    let reply: Msg;
    try {
      reply = await nc.request(this.subjects.rpc(this.credentials.agentId, method), bytes, { timeout: this.timeoutMs, headers: h });
    } catch (err) {
      throw asTransportError(err, method);
    }
    const error = statusOf(reply);
    if (error) throw error;
    if (reply.data.length > this.maxBytes) throw oversize(reply.data.length, this.maxBytes, 'response');
    return reply;
  }

  async join(request: JoinRequest): Promise<JoinAccepted> {
    // The token stays here: the request's proof stands for it (the coordinator fills it in once the proof holds).
    const reply = await this.request('join', this.codecs.joinRequest.encode({ ...request, token: '' }));
    const accepted = this.codecs.joinAccepted.decode(reply.data);
    this.heartbeatMs = accepted.heartbeatMs;
    this.logPublicKey = accepted.logPublicKey;
    return accepted;
  }

  async fetchLog(request: FetchLogRequest): Promise<FetchLogResponse> {
    if (this.options.readLogFromStream) {
      try {
        const nc = await this.connection();
        const { entries, head } = await readLogStream(nc, this.subjects, request.fromVersion, request.toVersion, {
          timeoutMs: this.timeoutMs,
          ...(this.logPublicKey ? { publicKey: this.logPublicKey } : {}),
        });
        const to = request.toVersion === 0 ? head : request.toVersion;
        // Past the head the stream knows (a replica may lag), or an empty page: the coordinator answers instead.
        if (request.fromVersion <= head && to <= head && (entries.length > 0 || request.fromVersion >= to)) {
          // Through the wire form and its schema, like any FetchLog response.
          return decodeFetchLogResponse(encodeFetchLogResponse({ entries, headVersion: head }));
        }
      } catch {
        // Reading the stream is a shortcut; the coordinator still serves the log.
      }
    }
    const reply = await this.request('fetchlog', this.codecs.fetchLogRequest.encode(request));
    return this.codecs.fetchLogResponse.decode(reply.data);
  }

  fetchSnapshot(request: FetchSnapshotRequest): AsyncIterable<SnapshotChunk> {
    const self = this;
    return (async function* (): AsyncGenerator<SnapshotChunk> {
      let reply = await self.request('snapshot', self.codecs.snapshotRequest.encode(request));
      const transfer = reply.headers?.get(NATS_HEADERS.transfer) ?? '';
      let complete = false;
      try {
        for (;;) {
          yield self.codecs.snapshotChunk.decode(reply.data);
          if (reply.headers?.get(NATS_HEADERS.more) !== '1') break;
          reply = await self.request('snapshot', Empty, { [NATS_HEADERS.transfer]: transfer });
        }
        complete = true;
      } finally {
        // Abandoned early: let the coordinator drop the transfer now rather than at its timeout.
        if (!complete && transfer !== '') self.request('snapshot', Empty, { [NATS_HEADERS.transfer]: transfer, [NATS_HEADERS.control]: 'cancel' }).catch(() => undefined);
      }
    })();
  }

  session(listener: StreamListener<CoordinatorMessage>): ClientSession {
    const periods = this.options.livenessPeriods ?? DEFAULT_LIVENESS_PERIODS;
    const livenessMs = this.options.livenessMs ?? Math.max(MIN_LIVENESS_MS, periods * (this.heartbeatMs || 2000));
    const session = new NatsClientSession(this, this.credentials.agentId, listener, livenessMs);
    this.sessions.add(session);
    this.connection().then(
      (nc) => {
        const perAgent = this.options.connection ? (this.options.perAgentDownlink ?? false) : true;
        session.start(nc, hubFor(nc, this.subjects, perAgent, this.maxBytes), this.timeoutMs);
      },
      (err: unknown) => session.closeWith(asTransportError(err, 'session')),
    );
    return session;
  }

  forget(session: NatsClientSession): void {
    this.sessions.delete(session);
  }

  close(): void {
    if (this.closed) return;
    for (const session of [...this.sessions]) session.abort(new TransportError('CANCELLED', 'agent closed the connection'));
    this.closed = true;
    if (!this.options.connection) {
      void this.ready.then(
        async (nc) => {
          await settleWithin(nc.flush(), 2000);
          await nc.close().catch(() => undefined);
        },
        () => undefined,
      );
    }
  }
}

/** Counts of one transport's clients, kept across reconnects. */
interface DownlinkCounters {
  forged: number;
}

export class NatsTransport implements Transport {
  readonly subjects: JobSubjects;
  private readonly options: NatsTransportOptions;
  private readonly counters: DownlinkCounters = { forged: 0 };

  constructor(options: NatsTransportOptions) {
    if (!options.connection && options.servers === undefined) throw new RangeError('NatsTransport: give a connection or servers');
    this.options = options;
    this.subjects = jobSubjects(options.jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  }

  async listen(handler: CoordinatorHandler): Promise<Listener> {
    const owned = !this.options.connection;
    const nc =
      this.options.connection ??
      (await connectNats({
        servers: this.options.servers!,
        ...(this.options.auth ? { auth: this.options.auth } : {}),
        ...(this.options.tls ? { tls: this.options.tls } : {}),
        name: `mezo-coordinator ${this.options.jobId}`,
      }));
    const listener = new NatsListener(
      nc,
      owned,
      handler,
      this.subjects,
      this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      this.options.callTimeoutMs ?? 30_000,
    );
    // The subscriptions are on the server before listen() resolves: an agent's next request finds them.
    await nc.flush();
    return listener;
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    return new NatsCoordinatorClient(this.options, this.subjects, credentials, this.counters);
  }

  /**
   * Agent side: session messages that reached this transport's clients on their downlink and were dropped as
   * not the coordinator's (a MAC, sequence number or signature that did not check out), in total.
   */
  forgedDownlink(): number {
    return this.counters.forged;
  }
}

/** Asks a job's coordinator for its health over NATS: SERVING or NOT_SERVING (UNAVAILABLE when none listens). */
export async function checkNatsHealth(nc: NatsConnection, jobId: string, options: { subjectPrefix?: string; timeoutMs?: number } = {}): Promise<HealthStatus> {
  const subjects = jobSubjects(jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  try {
    const reply = await nc.request(subjects.health, Empty, { timeout: options.timeoutMs ?? 5000 });
    return Buffer.from(reply.data).toString('utf8') as HealthStatus;
  } catch (err) {
    throw asTransportError(err, 'health');
  }
}
