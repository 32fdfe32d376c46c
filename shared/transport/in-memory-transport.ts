/**
 * A Transport inside one process, with the gRPC transport's semantics: every message is serialized to protobuf
 * by the gRPC service's own serializers, size-checked, counted and deserialized and decoded (validated) on the
 * far side, so it moves and counts the bytes gRPC would (less gRPC's 5-byte frame); delivery is asynchronous
 * and in order per stream; errors carry the same status names. For tests and simulations that need no sockets.
 */
import { TransportError, toTransportError } from './errors.js';
import { ServiceHealth } from './health.js';
import { getCodecs, type Codec } from './codecs.js';
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
  ServerSession,
  StreamListener,
  Transport,
} from './transport.js';

let instances = 0;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const asTransportError = (err: unknown): TransportError => toTransportError(err);

interface WireCopy<T> {
  bytes: Buffer;
  decoded?: { message: T } | { error: TransportError };
}
const wireCopies = new WeakMap<object, WireCopy<unknown>>();

/** One direction of a stream: encode, serialize, check, deliver later in order. */
class Pipe<T> {
  private listener: StreamListener<T> | undefined;
  private backlog: Array<() => void> = [];
  private done = false;

  constructor(
    private readonly codec: Codec<T>,
    private readonly maxBytes: number,
    private readonly onOversize: (error: TransportError) => void,
    private readonly count: (bytes: number) => void,
  ) {}

  attach(listener: StreamListener<T>): void {
    this.listener = listener;
    const waiting = this.backlog;
    this.backlog = [];
    waiting.forEach((deliver) => deliver());
  }

  private post(deliver: () => void): void {
    setImmediate(() => {
      if (this.listener) deliver();
      else this.backlog.push(deliver);
    });
  }

  get closed(): boolean {
    return this.done;
  }

  push(message: T): boolean {
    if (this.done) return false;
    // The same message object sent on many streams (a broadcast) is serialized and decoded once; every
    // recipient gets that one decoded copy, as a gRPC client would get equal copies. Receivers do not mutate
    // messages.
    let copy = wireCopies.get(message as object) as WireCopy<T> | undefined;
    if (!copy) {
      copy = { bytes: this.codec.encode(message) };
      wireCopies.set(message as object, copy);
    }
    if (copy.bytes.length > this.maxBytes) {
      this.onOversize(new TransportError('RESOURCE_EXHAUSTED', `message larger than the ${this.maxBytes}-byte limit`));
      return true;
    }
    this.count(copy.bytes.length);
    const shared = copy;
    this.post(() => {
      if (!shared.decoded) {
        try {
          shared.decoded = { message: this.codec.decode(shared.bytes) };
        } catch (err) {
          shared.decoded = { error: asTransportError(err) };
        }
      }
      if ('error' in shared.decoded) this.listener!.invalid(shared.decoded.error);
      else this.listener!.message(shared.decoded.message);
    });
    return true;
  }

  finish(error?: TransportError): void {
    if (this.done) return;
    this.post(() => this.listener!.closed(error));
    // Messages already posted are still delivered; nothing new is accepted.
    this.done = true;
  }
}

class MemorySession implements ServerSession {
  readonly down: Pipe<CoordinatorMessage>;
  readonly up: Pipe<AgentMessage>;

  constructor(
    readonly info: CallInfo,
    maxBytes: number,
    meter: TrafficMeter,
    private readonly onEnd: (session: MemorySession) => void,
  ) {
    const codecs = getCodecs();
    this.down = new Pipe(codecs.coordinatorMessage, maxBytes, (e) => this.abort(e), (n) => meter.down(info.agentId, n));
    this.up = new Pipe(codecs.agentMessage, maxBytes, (e) => this.abort(e), (n) => meter.up(info.agentId, n));
  }

  send(message: CoordinatorMessage): boolean {
    return this.down.push(message);
  }

  end(error?: TransportError): void {
    this.abort(error);
  }

  listen(listener: StreamListener<AgentMessage>): void {
    this.up.attach(listener);
  }

  /** Ends both directions: the agent hears `error`, the coordinator hears it too (or a clean close). */
  abort(error?: TransportError): void {
    if (this.down.closed && this.up.closed) return;
    this.down.finish(error);
    this.up.finish(error);
    this.onEnd(this);
  }
}

export interface InMemoryTransportOptions {
  maxMessageBytes?: number;
}

export class InMemoryTransport implements Transport {
  readonly address = `memory://${++instances}`;
  private handler: CoordinatorHandler | undefined;
  private readonly sessions = new Set<MemorySession>();
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
        for (const session of [...this.sessions]) session.abort(new TransportError('UNAVAILABLE', 'coordinator shutting down'));
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
    if (requestBytes.length > this.maxBytes) throw new TransportError('RESOURCE_EXHAUSTED', `request larger than the ${this.maxBytes}-byte limit`);
    let responseBytes: Buffer;
    try {
      responseBytes = codecs.response.encode(await serve(handler, codecs.request.decode(requestBytes)));
    } catch (err) {
      this.meter.refuse(requestBytes.length);
      throw asTransportError(err);
    }
    // Counted per agent only once the coordinator accepted the call: a refused caller's id is no one's.
    this.meter.admit(agentId);
    this.meter.up(agentId, requestBytes.length);
    await tick();
    if (responseBytes.length > this.maxBytes) throw new TransportError('RESOURCE_EXHAUSTED', `response larger than the ${this.maxBytes}-byte limit`);
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
      try {
        chunks = await handler.fetchSnapshot(codecs.snapshotRequest.decode(bytes), info());
      } catch (err) {
        this.meter.refuse(bytes.length);
        throw err;
      }
      this.meter.admit(info().agentId);
      this.meter.up(info().agentId, bytes.length);
    } catch (err) {
      throw asTransportError(err);
    }
    for (const chunk of chunks) {
      const bytes = codecs.snapshotChunk.encode(chunk);
      if (bytes.length > this.maxBytes) throw new TransportError('RESOURCE_EXHAUSTED', `message larger than the ${this.maxBytes}-byte limit`);
      this.meter.down(info().agentId, bytes.length);
      await tick();
      if (!this.handler) throw new TransportError('UNAVAILABLE', 'coordinator shutting down');
      yield codecs.snapshotChunk.decode(bytes);
    }
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const mine = new Set<MemorySession>();
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
        let session: MemorySession;
        let refusal: TransportError | undefined;
        try {
          session = new MemorySession(info(), this.maxBytes, this.meter, (s) => {
            this.sessions.delete(s);
            mine.delete(s);
          });
        } catch (err) {
          refusal = asTransportError(err);
          setImmediate(() => listener.closed(refusal));
          return { send: () => false, end: () => undefined };
        }
        session.down.attach(listener);
        setImmediate(() => {
          if (session.down.closed) return;
          try {
            this.sessions.add(session);
            mine.add(session);
            this.serving().session(session);
            this.meter.admit(session.info.agentId);
          } catch (err) {
            this.meter.refuse(0);
            session.abort(asTransportError(err));
          }
        });
        return {
          send: (message) => session.up.push(message),
          end: () => session.abort(new TransportError('CANCELLED', 'agent ended the session')),
        };
      },
      close: () => {
        for (const session of [...mine]) session.abort(new TransportError('CANCELLED', 'agent closed the connection'));
      },
    };
  }
}

