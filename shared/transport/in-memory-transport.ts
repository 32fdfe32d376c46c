/**
 * A Transport inside one process, with the gRPC transport's semantics: every message is serialized to protobuf
 * by the gRPC service's own serializers, size-checked, counted and deserialized and decoded (validated) on the
 * far side, so it moves and counts the bytes gRPC would (less gRPC's 5-byte frame); delivery is asynchronous
 * and in order per stream; errors carry the same status names. For tests and simulations that need no sockets.
 */
import { TransportError } from './errors.js';
import { loadProtocol } from './proto.js';
import { TrafficMeter } from './traffic-meter.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
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

/** Protobuf in both directions of one RPC method, as a gRPC client and server would use them. */
interface MethodCodec {
  request: { serialize(wire: unknown): Buffer; deserialize(bytes: Buffer): unknown };
  response: { serialize(wire: unknown): Buffer; deserialize(bytes: Buffer): unknown };
}

type Method = 'Join' | 'FetchLog' | 'FetchSnapshot' | 'Session';

function codecOf(method: Method): MethodCodec {
  const definition = loadProtocol().coordinator.service[method]!;
  return {
    request: { serialize: (wire) => definition.requestSerialize(wire), deserialize: (bytes) => definition.requestDeserialize(bytes) },
    response: { serialize: (wire) => definition.responseSerialize(wire), deserialize: (bytes) => definition.responseDeserialize(bytes) },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function asTransportError(err: unknown): TransportError {
  if (err instanceof TransportError) return err;
  return new TransportError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

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
    private readonly encode: (message: T) => Record<string, unknown>,
    private readonly decode: (wire: unknown) => T,
    private readonly codec: MethodCodec['request'],
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
      copy = { bytes: this.codec.serialize(this.encode(message)) };
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
          shared.decoded = { message: this.decode(this.codec.deserialize(shared.bytes)) };
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
    const codec = codecOf('Session');
    this.down = new Pipe(encodeCoordinatorMessage, decodeCoordinatorMessage, codec.response, maxBytes, (e) => this.abort(e), (n) => meter.down(info.agentId, n));
    this.up = new Pipe(encodeAgentMessage, decodeAgentMessage, codec.request, maxBytes, (e) => this.abort(e), (n) => meter.up(info.agentId, n));
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
  health: HealthStatus = 'NOT_SERVING';

  constructor(options: InMemoryTransportOptions = {}) {
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async listen(handler: CoordinatorHandler): Promise<Listener> {
    if (this.handler) throw new TransportError('ALREADY_EXISTS', `${this.address} is already served`);
    this.handler = handler;
    this.health = 'SERVING';
    const meter = (this.meter = new TrafficMeter());
    await tick();
    return {
      address: this.address,
      traffic: () => meter.snapshot(),
      refused: () => meter.refused(),
      setHealth: (status) => {
        this.health = status;
      },
      close: async () => {
        if (this.handler !== handler) return;
        this.handler = undefined;
        this.health = 'NOT_SERVING';
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
  private async unary<Res>(
    method: Method,
    agentId: string,
    request: Record<string, unknown>,
    serve: (handler: CoordinatorHandler, wire: unknown) => Promise<Record<string, unknown>>,
    decodeResponse: (wire: unknown) => Res,
  ): Promise<Res> {
    await tick();
    const handler = this.serving();
    const codec = codecOf(method);
    const requestBytes = codec.request.serialize(request);
    if (requestBytes.length > this.maxBytes) throw new TransportError('RESOURCE_EXHAUSTED', `request larger than the ${this.maxBytes}-byte limit`);
    let responseBytes: Buffer;
    try {
      responseBytes = codec.response.serialize(await serve(handler, codec.request.deserialize(requestBytes)));
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
    return decodeResponse(codec.response.deserialize(responseBytes));
  }

  /** A server-streaming call: the chunks are copied, size-checked and decoded one by one, asynchronously. */
  private async *snapshotStream(request: FetchSnapshotRequest, info: () => CallInfo): AsyncGenerator<SnapshotChunk> {
    await tick();
    const codec = codecOf('FetchSnapshot');
    let chunks: Iterable<SnapshotChunk>;
    try {
      const handler = this.serving();
      const bytes = codec.request.serialize(encodeFetchSnapshotRequest(request));
      try {
        chunks = await handler.fetchSnapshot(decodeFetchSnapshotRequest(codec.request.deserialize(bytes)), info());
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
      const bytes = codec.response.serialize(encodeSnapshotChunk(chunk));
      if (bytes.length > this.maxBytes) throw new TransportError('RESOURCE_EXHAUSTED', `message larger than the ${this.maxBytes}-byte limit`);
      this.meter.down(info().agentId, bytes.length);
      await tick();
      if (!this.handler) throw new TransportError('UNAVAILABLE', 'coordinator shutting down');
      yield decodeSnapshotChunk(codec.response.deserialize(bytes));
    }
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const mine = new Set<MemorySession>();
    const info = (): CallInfo => ({ agentId: checkAgentId(credentials.agentId), token: credentials.token, peer: this.address });
    return {
      join: (request) =>
        this.unary(
          'Join',
          request.agentId,
          encodeJoinRequest(request),
          async (handler, wire) => encodeJoinAccepted(await handler.join(decodeJoinRequest(wire), this.address)),
          decodeJoinAccepted,
        ),
      fetchLog: (request) =>
        this.unary(
          'FetchLog',
          credentials.agentId,
          encodeFetchLogRequest(request),
          async (handler, wire) => encodeFetchLogResponse(await handler.fetchLog(decodeFetchLogRequest(wire), info())),
          decodeFetchLogResponse,
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

