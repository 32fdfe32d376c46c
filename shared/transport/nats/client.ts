/**
 * The agent's side of the NATS transport: one CoordinatorClient per agent connection. Requests carry a proof
 * of the token (proof.ts), never the token; FetchLog may read the job's JetStream log stream directly
 * (stream-reads.ts); a snapshot is pulled piece by piece (../framed-session/snapshot-pieces.ts); sessions are client-session.ts on the connection's
 * hub (client-hub.ts). Its own connection is opened through the transport's connect function (connect.ts).
 */
import { Empty, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { getCodecs } from '../codecs.js';
import { TransportError } from '../errors.js';
import { livenessWindowMs, pullSnapshot, tooLarge, type ReceivedPiece } from '../framed-session/index.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  checkAgentId,
  type CoordinatorMessage,
  type FetchLogRequest,
  type FetchLogResponse,
  type FetchSnapshotRequest,
  type JoinAccepted,
  type JoinRequest,
  type SnapshotChunk,
} from '../messages.js';
import type { AgentCredentials, ClientSession, CoordinatorClient, StreamListener } from '../transport.js';
import { hubFor } from './client-hub.js';
import { NatsClientSession } from './client-session.js';
import { connectNats } from './connect.js';
import { newNonce, PROOF_HEADERS, requestProof } from './proof.js';
import { readFromLogStream } from './stream-reads.js';
import { NATS_HEADERS, type JobSubjects, type RpcMethod } from './subjects.js';
import type { NatsTransportOptions } from './transport.js';
import { asTransportError, settleWithin, statusOf } from './wire.js';

/** Counts of one transport's clients, kept across reconnects. */
export interface DownlinkCounters {
  forged: number;
}

export class NatsCoordinatorClient implements CoordinatorClient {
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
        ...(options.readFile ? { readFile: options.readFile } : {}),
        name: `mezo-agent ${credentials.agentId}`,
        inboxPrefix: subjects.inboxPrefix(credentials.agentId),
        // A lost connection ends this client; the agent reconnects with a new one (as with a gRPC channel).
        reconnect: false,
      }, options.connect);
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
   * Headers of a request: `extra`, and with a token the proof of it (proof.ts) — never the token itself.
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
    if (bytes.length > this.maxBytes) throw tooLarge(bytes.length, this.maxBytes, 'request');
    const h = this.proofHeaders(method, bytes, extra).headers;
    let reply: Msg;
    try {
      reply = await nc.request(this.subjects.rpc(this.credentials.agentId, method), bytes, { timeout: this.timeoutMs, headers: h });
    } catch (err) {
      throw asTransportError(err, method);
    }
    const error = statusOf(reply);
    if (error) throw error;
    if (reply.data.length > this.maxBytes) throw tooLarge(reply.data.length, this.maxBytes, 'response');
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
        const read = await readFromLogStream(nc, this.subjects, request, this.timeoutMs, this.logPublicKey);
        if (read) return read;
      } catch {
        // Reading the stream is a shortcut; the coordinator still serves the log.
      }
    }
    const reply = await this.request('fetchlog', this.codecs.fetchLogRequest.encode(request));
    return this.codecs.fetchLogResponse.decode(reply.data);
  }

  fetchSnapshot(request: FetchSnapshotRequest): AsyncIterable<SnapshotChunk> {
    const piece = (reply: Msg): ReceivedPiece => ({
      bytes: reply.data,
      transferId: reply.headers?.get(NATS_HEADERS.transfer) ?? '',
      more: reply.headers?.get(NATS_HEADERS.more) === '1',
    });
    return pullSnapshot(
      async () => piece(await this.request('snapshot', this.codecs.snapshotRequest.encode(request))),
      async (transfer) => piece(await this.request('snapshot', Empty, { [NATS_HEADERS.transfer]: transfer })),
      // Abandoned early: the coordinator drops the transfer now rather than at its timeout.
      (transfer) => void this.request('snapshot', Empty, { [NATS_HEADERS.transfer]: transfer, [NATS_HEADERS.control]: 'cancel' }).catch(() => undefined),
      (bytes) => this.codecs.snapshotChunk.decode(bytes),
    );
  }

  session(listener: StreamListener<CoordinatorMessage>): ClientSession {
    const livenessMs = livenessWindowMs(this.heartbeatMs, this.options.livenessPeriods, this.options.livenessMs);
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
