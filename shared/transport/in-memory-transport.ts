/**
 * A Transport inside one process, with the gRPC transport's semantics: every message is serialized to protobuf
 * by the gRPC service's own serializers, size-checked, counted and deserialized and decoded (validated) on the
 * far side, so it moves and counts the bytes gRPC would (less gRPC's 5-byte frame); delivery is asynchronous
 * and in order per stream; errors carry the same status names. For tests and simulations that need no sockets.
 *
 * Sessions, their ends, the session table and metering are the framed-session core's (framed-session/); what
 * is this link's own is how a frame moves: on a later turn of the event loop, in order, and a message object
 * sent on many sessions (a broadcast) serialized and decoded once. Nothing is lost in one process, so there is
 * no liveness window, and a snapshot's chunks go as they are (no pieces).
 */
import { TransportError, toTransportError } from './errors.js';
import { ServiceHealth } from './health.js';
import { getCodecs, type Codec } from './codecs.js';
import { FramedClientSession, FramedServerSession, SessionTable, meteredCall, tooLarge } from './framed-session/index.js';
import { TrafficMeter } from './traffic-meter.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  checkAgentId,
  type AgentMessage,
  type CoordinatorMessage,
  type FetchSnapshotRequest,
  type SnapshotChunk,
} from './messages.js';
import type {
  AgentCredentials,
  CallInfo,
  ClientSession,
  CoordinatorClient,
  CoordinatorHandler,
  HealthStatus,
  Listener,
  StreamListener,
  Transport,
} from './transport.js';

let instances = 0;
let sessionIds = 0;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How a frame moves on this link: on a later turn of the event loop, in the order sent. */
const later = (deliver: () => void): void => {
  setImmediate(deliver);
};

const asTransportError = (err: unknown): TransportError => toTransportError(err);

interface WireCopy {
  bytes: Buffer;
  decoded?: { message: CoordinatorMessage } | { error: TransportError };
}
const wireCopies = new WeakMap<CoordinatorMessage, WireCopy>();

/** What a session's two ends share on this link: the size limit, the meter, and the table of open sessions. */
interface MemoryLink {
  maxBytes: number;
  meter: TrafficMeter;
  sessions: SessionTable<MemoryServerSession>;
}

/** The coordinator's end: a frame goes to the agent's end on a later turn. */
class MemoryServerSession extends FramedServerSession {
  peer!: MemoryClientSession;

  constructor(
    info: CallInfo,
    private readonly link: MemoryLink,
  ) {
    // The coordinator hears a session's end on a later turn, as over gRPC (whose semantics this link keeps).
    super(info, String(++sessionIds), 0, { reportEndLater: true });
  }

  protected sendFrame(message: CoordinatorMessage): boolean {
    // The same message object sent on many sessions (a broadcast) is serialized and decoded once; every
    // recipient gets that one decoded copy, as a gRPC client would get equal copies. Receivers do not mutate
    // messages.
    let copy = wireCopies.get(message);
    if (!copy) {
      copy = { bytes: getCodecs().coordinatorMessage.encode(message) };
      wireCopies.set(message, copy);
    }
    if (copy.bytes.length > this.link.maxBytes) {
      this.end(tooLarge(copy.bytes.length, this.link.maxBytes, 'message'));
      return true;
    }
    this.link.meter.down(this.info.agentId, copy.bytes.length);
    const shared = copy;
    const peer = this.peer;
    later(() => {
      if (!shared.decoded) {
        try {
          shared.decoded = { message: getCodecs().coordinatorMessage.decode(shared.bytes) };
        } catch (err) {
          shared.decoded = { error: asTransportError(err) };
        }
      }
      if ('error' in shared.decoded) peer.invalid(shared.decoded.error);
      else peer.deliver(shared.decoded.message);
    });
    return true;
  }

  protected sendEndFrame(error: TransportError | undefined): void {
    const peer = this.peer;
    // After the messages already sent: the agent hears them, then the end.
    later(() => peer.closeWith(error));
  }

  protected forgotten(): void {
    this.link.sessions.delete(this);
  }
}

/** The agent's end: open at once (the coordinator's end holds what arrives before the handler listens). */
class MemoryClientSession extends FramedClientSession {
  /** The agent ended the session; its own end is reported after what was already on the way to it. */
  ending = false;

  constructor(
    listener: StreamListener<CoordinatorMessage>,
    private readonly link: MemoryLink,
    readonly peer: MemoryServerSession,
    private readonly onForget: (session: MemoryClientSession) => void,
  ) {
    super(listener, link.maxBytes);
    this.opened();
  }

  protected sendFrame(bytes: Uint8Array): boolean {
    this.link.meter.up(this.peer.info.agentId, bytes.length);
    const peer = this.peer;
    later(() => peer.receive(bytes));
    return true;
  }

  protected sendEndFrame(error: TransportError): void {
    const peer = this.peer;
    later(() => peer.finish(error));
  }

  protected forgotten(): void {
    this.onForget(this);
  }

  /** In one process nothing is lost: messages already on the way to the agent still reach it before its end. */
  override abort(error: TransportError): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.sendEndFrame(error);
    later(() => this.closeWith(error));
  }

  override send(message: AgentMessage): boolean {
    return this.ending ? false : super.send(message);
  }
}

export interface InMemoryTransportOptions {
  maxMessageBytes?: number;
}

export class InMemoryTransport implements Transport {
  readonly address = `memory://${++instances}`;
  private handler: CoordinatorHandler | undefined;
  private readonly sessions = new SessionTable<MemoryServerSession>();
  private readonly maxBytes: number;
  private meter = new TrafficMeter();
  /** What a health check here would answer: the coordinator's health while one listens (../health.ts). */
  get health(): HealthStatus {
    return this.handler ? this.serviceHealth.status : 'NOT_SERVING';
  }
  private serviceHealth = new ServiceHealth('NOT_SERVING');

  constructor(options: InMemoryTransportOptions = {}) {
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async listen(handler: CoordinatorHandler): Promise<Listener> {
    if (this.handler) throw new TransportError('ALREADY_EXISTS', `${this.address} is already served`);
    this.handler = handler;
    const health = (this.serviceHealth = handler.health ?? new ServiceHealth('SERVING'));
    const meter = (this.meter = new TrafficMeter());
    await tick();
    return {
      address: this.address,
      traffic: () => meter.snapshot(),
      refused: () => meter.refused(),
      setHealth: (status) => health.set(status),
      close: async () => {
        if (this.handler !== handler) return;
        this.handler = undefined;
        health.set('NOT_SERVING');
        for (const session of this.sessions.all()) session.end(new TransportError('UNAVAILABLE', 'coordinator shutting down'));
        await tick();
      },
    };
  }

  private serving(): CoordinatorHandler {
    if (!this.handler) throw new TransportError('UNAVAILABLE', `nothing listens at ${this.address}`);
    return this.handler;
  }

  /** Runs one unary call, serialized to protobuf in both directions. */
  private async unary<Req, Res>(
    agentId: string,
    request: Req,
    codecs: { request: Codec<Req>; response: Codec<Res> },
    serve: (handler: CoordinatorHandler, request: Req) => Promise<Res>,
  ): Promise<Res> {
    await tick();
    const handler = this.serving();
    const requestBytes = codecs.request.encode(request);
    if (requestBytes.length > this.maxBytes) throw tooLarge(requestBytes.length, this.maxBytes, 'request');
    let responseBytes: Buffer;
    try {
      responseBytes = await meteredCall(this.meter, () => agentId, requestBytes.length, async () =>
        codecs.response.encode(await serve(handler, codecs.request.decode(requestBytes))),
      );
    } catch (err) {
      throw asTransportError(err);
    }
    await tick();
    if (responseBytes.length > this.maxBytes) throw tooLarge(responseBytes.length, this.maxBytes, 'response');
    this.meter.down(agentId, responseBytes.length);
    return codecs.response.decode(responseBytes);
  }

  /** A server-streaming call: the chunks are copied, size-checked and decoded one by one, asynchronously. */
  private async *snapshotStream(request: FetchSnapshotRequest, info: () => CallInfo): AsyncGenerator<SnapshotChunk> {
    await tick();
    const codecs = getCodecs();
    let chunks: Iterable<SnapshotChunk>;
    try {
      const handler = this.serving();
      const bytes = codecs.snapshotRequest.encode(request);
      chunks = await meteredCall(this.meter, () => info().agentId, bytes.length, () => handler.fetchSnapshot(codecs.snapshotRequest.decode(bytes), info()));
    } catch (err) {
      throw asTransportError(err);
    }
    for (const chunk of chunks) {
      const bytes = codecs.snapshotChunk.encode(chunk);
      if (bytes.length > this.maxBytes) throw tooLarge(bytes.length, this.maxBytes, 'message');
      this.meter.down(info().agentId, bytes.length);
      await tick();
      if (!this.handler) throw new TransportError('UNAVAILABLE', 'coordinator shutting down');
      yield codecs.snapshotChunk.decode(bytes);
    }
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const mine = new Set<MemoryClientSession>();
    const info = (): CallInfo => ({ agentId: checkAgentId(credentials.agentId), token: credentials.token, peer: this.address });
    return {
      join: (request) =>
        this.unary(request.agentId, request, { request: getCodecs().joinRequest, response: getCodecs().joinAccepted }, (handler, decoded) =>
          handler.join(decoded, this.address),
        ),
      fetchLog: (request) =>
        this.unary(credentials.agentId, request, { request: getCodecs().fetchLogRequest, response: getCodecs().fetchLogResponse }, (handler, decoded) =>
          handler.fetchLog(decoded, info()),
        ),
      fetchSnapshot: (request) => this.snapshotStream(request, info),
      session: (listener): ClientSession => {
        let callInfo: CallInfo;
        try {
          callInfo = info();
        } catch (err) {
          const refusal = asTransportError(err);
          setImmediate(() => listener.closed(refusal));
          return { send: () => false, end: () => undefined };
        }
        const link: MemoryLink = { maxBytes: this.maxBytes, meter: this.meter, sessions: this.sessions };
        const server = new MemoryServerSession(callInfo, link);
        const client = new MemoryClientSession(listener, link, server, (s) => mine.delete(s));
        server.peer = client;
        mine.add(client);
        // The open reaches the coordinator on a later turn, before anything the agent sends on the session.
        later(() => {
          if (client.ending || client.closed) return;
          try {
            this.sessions.add(server);
            this.serving().session(server);
            this.meter.admit(callInfo.agentId);
          } catch (err) {
            this.meter.refuse(0);
            server.refuse();
            const refusal = asTransportError(err);
            later(() => client.closeWith(refusal));
          }
        });
        return client;
      },
      close: () => {
        for (const session of [...mine]) session.abort(new TransportError('CANCELLED', 'agent closed the connection'));
      },
    };
  }
}

