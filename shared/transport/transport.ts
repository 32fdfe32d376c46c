/**
 * The seam between the federation's logic and the wire. The coordinator's round loop serves a
 * CoordinatorHandler; an agent talks through a CoordinatorClient; a Transport makes one from the other. Both
 * sides see only typed, validated messages (messages.ts) and TransportErrors with gRPC status names, so the
 * same coordinator and agent code runs over gRPC (grpc-transport.ts), NATS (nats/) or in memory
 * (in-memory-transport.ts).
 */
import type { TransportError } from './errors.js';
import type { ServiceHealth } from './health.js';
import type { RefusedTraffic } from './traffic-meter.js';
import type {
  AgentMessage,
  CoordinatorMessage,
  FetchLogRequest,
  FetchLogResponse,
  FetchSnapshotRequest,
  JoinAccepted,
  JoinRequest,
  SnapshotChunk,
} from './messages.js';

/** Who is calling, as the transport established it (Session, FetchLog and FetchSnapshot: from call metadata). */
export interface CallInfo {
  agentId: string;
  token: string;
  /** The remote address, for logs. */
  peer: string;
}

/** What the receiving end of a stream hears. `invalid` reports a message that failed validation (it is dropped). */
export interface StreamListener<In> {
  message(message: In): void;
  invalid(error: TransportError): void;
  /** The stream ended: cleanly (no error) or with the error that ended it. Called once. */
  closed(error?: TransportError): void;
}

/** The coordinator's end of one agent's Session stream. */
export interface ServerSession {
  readonly info: CallInfo;
  /** Queues a message for the agent; false when the stream is already closed. */
  send(message: CoordinatorMessage): boolean;
  /** Ends the stream, with a status for the agent when `error` is given. */
  end(error?: TransportError): void;
  listen(listener: StreamListener<AgentMessage>): void;
}

/** The agent's end of its Session stream. */
export interface ClientSession {
  send(message: AgentMessage): boolean;
  end(): void;
}

/** What the coordinator implements. Throwing a TransportError refuses the call with that status. */
export interface CoordinatorHandler {
  join(request: JoinRequest, peer: string): Promise<JoinAccepted>;
  fetchLog(request: FetchLogRequest, info: CallInfo): Promise<FetchLogResponse>;
  /**
   * A snapshot, as the chunks to stream in order. Credentials and the request are checked before the promise
   * resolves (a rejection refuses the call); the chunks are produced lazily as the stream drains.
   */
  fetchSnapshot(request: FetchSnapshotRequest, info: CallInfo): Promise<Iterable<SnapshotChunk>>;
  /** A new Session stream; call session.listen() synchronously, or throw to refuse it. */
  session(session: ServerSession): void;
  /**
   * The token `agentId` must prove it holds (its own or the job's shared one); undefined when none applies. A
   * transport that never sends tokens in clear (NATS: nats/proof.ts) checks proofs against it and hands the
   * handler the token only when the proof holds.
   */
  secretOf?(agentId: string): string | undefined;
  /**
   * Signs a statement with the update log's key (log-signature.ts, LogSigner.signStatement); undefined when the
   * log is not signed. A transport uses it for what it cannot otherwise authenticate (NATS: the end of a session
   * a restarted coordinator does not know).
   */
  signStatement?(kind: string, fields: readonly string[]): string | undefined;
  /**
   * The coordinator's health (health.ts), which the listener's health check answers from and its setHealth and
   * close() write to; without one, the listener keeps its own (SERVING from listen() until close()).
   */
  readonly health?: ServiceHealth;
}

export type HealthStatus = 'SERVING' | 'NOT_SERVING';

/** What a transport moved for one agent: encoded message bytes, agent → coordinator (up) and back (down). */
export interface Traffic {
  bytesUp: number;
  bytesDown: number;
}

export interface Listener {
  /** Where agents reach it ("host:port" for gRPC). */
  readonly address: string;
  /**
   * Bytes moved per agent id since listen(), over every call (Join, FetchLog, FetchSnapshot, Session), counted
   * as the encoded messages (the transport's own framing aside). For reports and metrics.
   */
  traffic(): ReadonlyMap<string, Traffic>;
  /** Calls refused (bad credentials, unknown agents, malformed requests), in total: never per claimed id. */
  refused?(): RefusedTraffic;
  /** Session messages dropped because their MAC or sequence number did not hold (transports that check them: NATS). */
  forged?(): number;
  /** Sets the health its checks answer (the handler's ServiceHealth when it gave one). */
  setHealth(status: HealthStatus): void;
  /** Stops accepting calls, ends open streams (UNAVAILABLE) and waits up to graceMs for calls in flight. */
  close(graceMs?: number): Promise<void>;
}

export interface CoordinatorClient {
  join(request: JoinRequest): Promise<JoinAccepted>;
  fetchLog(request: FetchLogRequest): Promise<FetchLogResponse>;
  /** Streams a snapshot's chunks; iteration throws a TransportError when the call fails. */
  fetchSnapshot(request: FetchSnapshotRequest): AsyncIterable<SnapshotChunk>;
  /** Opens the Session stream; the listener hears the coordinator's messages. */
  session(listener: StreamListener<CoordinatorMessage>): ClientSession;
  close(): void;
}

export interface AgentCredentials {
  agentId: string;
  token: string;
}

export interface Transport {
  /** Coordinator side: serves `handler` until the listener is closed. */
  listen(handler: CoordinatorHandler): Promise<Listener>;
  /** Agent side: a client for the coordinator this transport points at. */
  connect(credentials: AgentCredentials): CoordinatorClient;
}
