/**
 * The gRPC Transport: the Coordinator service (proto/mezo/v1/coordinator.proto) plus grpc.health.v1 on one
 * server, and a client for agents. Identity for Session, FetchLog and FetchSnapshot travels in call metadata
 * (x-mezo-agent-id, x-mezo-token). Messages larger than maxMessageBytes are refused by gRPC itself with
 * RESOURCE_EXHAUSTED; every decoded message is validated (messages.ts) before the handler sees it.
 */
import type { Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { STATUS_CODES, TransportError, statusName, toTransportError } from './errors.js';
import { getCodecs, wireCodecs } from './codecs.js';
import { DEFAULT_MAX_MESSAGE_BYTES, checkAgentId, type AgentMessage, type CoordinatorMessage, type SnapshotChunk } from './messages.js';
import { loadProtocol, receivedBytes } from './proto.js';
import { TrafficMeter } from './traffic-meter.js';
import { meteredCall } from './framed-session/metering.js';
import { ServiceHealth } from './health.js';
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

export const AGENT_ID_HEADER = 'x-mezo-agent-id';
export const TOKEN_HEADER = 'x-mezo-token';
/** The service name health checks may ask about (the empty name means the whole server). */
export const COORDINATOR_SERVICE = 'mezo.v1.Coordinator';

export interface GrpcTransportOptions {
  /** host:port to bind (coordinator) or to dial (agent). Port 0 binds an ephemeral port. */
  address: string;
  maxMessageBytes?: number;
  /** Deadline of unary calls (Join, FetchLog), ms. Default 30 s. */
  callTimeoutMs?: number;
  /** Server credentials (default insecure; pass TLS credentials in production). */
  serverCredentials?: grpc.ServerCredentials;
  channelCredentials?: grpc.ChannelCredentials;
  /** Agent side with TLS: the name the coordinator's certificate is checked against (default: the dialled host). */
  serverNameOverride?: string;
  /** Agent side: a connection of this client's own rather than one shared with other clients of the same target. */
  localSubchannelPool?: boolean;
}

type WireObject = Record<string, unknown>;

/** gRPC's own statuses by their number; anything else through errors.ts. */
function toGrpcTransportError(err: unknown): TransportError {
  const service = err as Partial<grpc.ServiceError>;
  if (!(err instanceof TransportError) && typeof service?.code === 'number') {
    return new TransportError(statusName(service.code), service.details ?? service.message ?? 'call failed');
  }
  return toTransportError(err);
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const error = toGrpcTransportError(err);
  return { code: STATUS_CODES[error.code] as grpc.status, details: error.message };
}

function metadataValue(metadata: grpc.Metadata, key: string): string {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : '';
}

function callInfo(metadata: grpc.Metadata, peer: string): CallInfo {
  return { agentId: checkAgentId(metadataValue(metadata, AGENT_ID_HEADER)), token: metadataValue(metadata, TOKEN_HEADER), peer };
}

/** The identities a client certificate vouches for: its subject alternative names (DNS, URI) and its subject CN. */
export function certificateIdentities(cert: PeerCertificate): string[] {
  const ids: string[] = [];
  for (const entry of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const match = /^(DNS|URI):(.+)$/.exec(entry.trim());
    if (match) ids.push(match[2]!);
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string' && cn !== '') ids.push(cn);
  else if (Array.isArray(cn)) ids.push(...(cn as string[]));
  return ids;
}

/**
 * With mutual TLS, the agent id a call claims must be one its client certificate was issued to: a certificate
 * of one agent is no use for joining as another, even with that agent's token. Calls without a client
 * certificate (plaintext, server-only TLS) are left to the tokens.
 */
function checkCertificateIdentity(call: { getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null }, agentId: string): void {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert || Object.keys(cert).length === 0) return;
  const ids = certificateIdentities(cert);
  if (!ids.includes(agentId)) {
    throw new TransportError('PERMISSION_DENIED', `agent ${agentId}: the client certificate is issued to ${ids.length > 0 ? ids.slice(0, 4).join(', ') : 'no name'}, not to this agent`);
  }
}

function replaceHostPort(address: string, port: number): string {
  const at = address.lastIndexOf(':');
  const host = at < 0 ? address : address.slice(0, at);
  return `${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
}

const serializedMessages = new WeakMap<CoordinatorMessage, Buffer>();

/**
 * Turns Nagle's algorithm off on the server's accepted sockets, as grpc-js already does on client sockets. With
 * it on, a small message (a task) written while an earlier one is unacknowledged waits for the peer's delayed
 * ACK, which adds tens of milliseconds to a round. grpc-js offers no option for this, so the hook goes on its
 * HTTP/2 servers; if that internal ever changes, the server still works, only without the setting.
 */
function disableNagle(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<{ on?: (event: string, listener: (socket: Socket) => void) => void }, unknown> })
    .http2Servers;
  if (!(http2Servers instanceof Map)) return;
  for (const http2Server of http2Servers.keys()) http2Server.on?.('connection', (socket: Socket) => socket.setNoDelay(true));
}

class GrpcServerSession implements ServerSession {
  private listener: StreamListener<AgentMessage> | undefined;
  private backlog: unknown[] = [];
  private ended = false;
  private closedReported = false;
  private closeReason: TransportError | undefined | null = null;

  constructor(
    readonly info: CallInfo,
    private readonly call: grpc.ServerDuplexStream<WireObject, WireObject>,
    private readonly meter: TrafficMeter,
    private readonly onEnd: (session: GrpcServerSession) => void,
  ) {
    call.on('data', (wire: unknown) => {
      meter.up(info.agentId, receivedBytes(wire));
      if (this.listener) this.deliver(wire);
      else this.backlog.push(wire);
    });
    call.on('end', () => this.finished());
    call.on('cancelled', () => this.finished(new TransportError('CANCELLED', 'the agent cancelled the session')));
    call.on('error', (err) => this.finished(toGrpcTransportError(err)));
  }

  private deliver(wire: unknown): void {
    if (this.ended) return;
    let message: AgentMessage;
    try {
      message = wireCodecs.agentMessage.decode(wire);
    } catch (err) {
      this.listener!.invalid(toGrpcTransportError(err));
      return;
    }
    this.listener!.message(message);
  }

  private finished(error?: TransportError): void {
    if (!this.ended) {
      this.ended = true;
      if (!error) this.call.end();
    }
    this.onEnd(this);
    if (this.listener && !this.closedReported) {
      this.closedReported = true;
      this.listener.closed(error);
    } else if (this.closeReason === null) this.closeReason = error;
  }

  listen(listener: StreamListener<AgentMessage>): void {
    this.listener = listener;
    const waiting = this.backlog;
    this.backlog = [];
    waiting.forEach((wire) => this.deliver(wire));
    if (this.ended && !this.closedReported) {
      this.closedReported = true;
      listener.closed(this.closeReason ?? undefined);
    }
  }

  send(message: CoordinatorMessage): boolean {
    if (this.ended) return false;
    // The same message object sent on many streams (a broadcast) is encoded and serialized once.
    let bytes = serializedMessages.get(message);
    if (bytes === undefined) {
      bytes = getCodecs().coordinatorMessage.encode(message);
      serializedMessages.set(message, bytes);
    }
    this.meter.down(this.info.agentId, bytes.length);
    (this.call as unknown as grpc.ServerDuplexStream<WireObject, Buffer>).write(bytes);
    return true;
  }

  end(error?: TransportError): void {
    if (this.ended) return;
    this.ended = true;
    if (error) this.call.emit('error', toServiceError(error));
    else this.call.end();
    this.finished(error);
  }
}

export class GrpcTransport implements Transport {
  private readonly options: GrpcTransportOptions;
  private readonly maxBytes: number;

  constructor(options: GrpcTransportOptions) {
    this.options = options;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  private get channelOptions(): grpc.ChannelOptions {
    const options: grpc.ChannelOptions = { 'grpc.max_receive_message_length': this.maxBytes, 'grpc.max_send_message_length': this.maxBytes };
    if (this.options.localSubchannelPool) options['grpc.use_local_subchannel_pool'] = 1;
    if (this.options.serverNameOverride) {
      options['grpc.ssl_target_name_override'] = this.options.serverNameOverride;
      options['grpc.default_authority'] = this.options.serverNameOverride;
    }
    return options;
  }

  async listen(handler: CoordinatorHandler): Promise<Listener> {
    const protocol = loadProtocol();
    const server = new grpc.Server(this.channelOptions);
    const sessions = new Set<GrpcServerSession>();
    // The coordinator's health when it gave one (health.ts), else this listener's own.
    const health = handler.health ?? new ServiceHealth('SERVING');
    const watchers = new Set<grpc.ServerWritableStream<WireObject, WireObject>>();
    const meter = new TrafficMeter();
    const service = protocol.coordinator.service;
    /** Serializes a response here (the serializer passes Buffers through) so its bytes count for the agent. */
    const serialized = (method: string, agentId: string, wire: WireObject): Buffer => {
      const bytes = service[method]!.responseSerialize(wire);
      meter.down(agentId, bytes.length);
      return bytes;
    };

    const unary =
      <Req, Res>(
        method: string,
        decode: (wire: unknown) => Req,
        agentOf: (request: Req, call: grpc.ServerUnaryCall<WireObject, WireObject>) => string,
        serve: (request: Req, call: grpc.ServerUnaryCall<WireObject, WireObject>) => Promise<Res>,
        encode: (res: Res) => WireObject,
      ) =>
      (call: grpc.ServerUnaryCall<WireObject, WireObject>, callback: grpc.sendUnaryData<WireObject>): void => {
        let agentId = '';
        // Counted per agent only once the coordinator accepted the call (framed-session/metering.ts).
        meteredCall(meter, () => agentId, receivedBytes(call.request), async () => {
          const request = decode(call.request);
          agentId = agentOf(request, call);
          checkCertificateIdentity(call, agentId);
          return serve(request, call);
        }).then(
          (response) => callback(null, serialized(method, agentId, encode(response)) as unknown as WireObject),
          (err: unknown) => callback(toServiceError(err)),
        );
      };

    server.addService(protocol.coordinator.service, {
      Join: unary('Join', wireCodecs.joinRequest.decode, (request) => request.agentId, (request, call) => handler.join(request, call.getPeer()), wireCodecs.joinAccepted.encode),
      FetchLog: unary(
        'FetchLog',
        wireCodecs.fetchLogRequest.decode,
        (_, call) => callInfo(call.metadata, call.getPeer()).agentId,
        (request, call) => handler.fetchLog(request, callInfo(call.metadata, call.getPeer())),
        wireCodecs.fetchLogResponse.encode,
      ),
      FetchSnapshot: (call: grpc.ServerWritableStream<WireObject, WireObject>) => {
        void (async () => {
          let chunks: Iterable<SnapshotChunk>;
          let agentId = '';
          try {
            chunks = await meteredCall(meter, () => agentId, receivedBytes(call.request), async () => {
              const info = callInfo(call.metadata, call.getPeer());
              agentId = info.agentId;
              checkCertificateIdentity(call, info.agentId);
              return handler.fetchSnapshot(wireCodecs.snapshotRequest.decode(call.request), info);
            });
          } catch (err) {
            if (!call.cancelled) call.emit('error', toServiceError(err));
            return;
          }
          try {
            for (const chunk of chunks) {
              if (call.cancelled) return;
              if (!call.write(serialized('FetchSnapshot', agentId, wireCodecs.snapshotChunk.encode(chunk)) as unknown as WireObject)) {
                // Backpressure: a slab can be large; wait until the stream drains (or the agent goes away).
                await new Promise<void>((resolve) => {
                  const done = (): void => {
                    call.off('drain', done);
                    call.off('cancelled', done);
                    resolve();
                  };
                  call.on('drain', done);
                  call.on('cancelled', done);
                });
              }
            }
            if (!call.cancelled) call.end();
          } catch (err) {
            if (!call.cancelled) call.emit('error', toServiceError(err));
          }
        })();
      },
      Session: (call: grpc.ServerDuplexStream<WireObject, WireObject>) => {
        try {
          const info = callInfo(call.metadata, call.getPeer());
          checkCertificateIdentity(call, info.agentId);
          const session = new GrpcServerSession(info, call, meter, (s) => sessions.delete(s));
          sessions.add(session);
          handler.session(session);
          meter.admit(session.info.agentId);
        } catch (err) {
          meter.refuse(0);
          call.emit('error', toServiceError(err));
        }
      },
    });

    const knownService = (name: unknown): boolean => name === '' || name === COORDINATOR_SERVICE;
    server.addService(protocol.health.service, {
      Check: (call: grpc.ServerUnaryCall<WireObject, WireObject>, callback: grpc.sendUnaryData<WireObject>) => {
        if (!knownService(call.request.service)) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${String(call.request.service)}` });
        else callback(null, { status: health.status });
      },
      Watch: (call: grpc.ServerWritableStream<WireObject, WireObject>) => {
        call.write({ status: knownService(call.request.service) ? health.status : 'SERVICE_UNKNOWN' });
        watchers.add(call);
        call.on('cancelled', () => watchers.delete(call));
      },
    });

    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.options.address, this.options.serverCredentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(new TransportError('UNAVAILABLE', `cannot bind ${this.options.address}: ${err.message}`, { cause: err })) : resolve(bound),
      ),
    );

    disableNagle(server);

    const unwatch = health.watch((status) => {
      for (const watcher of watchers) watcher.write({ status });
    });
    const setHealth = (status: HealthStatus): void => health.set(status);
    let closing: Promise<void> | undefined;
    return {
      address: replaceHostPort(this.options.address, port),
      traffic: () => meter.snapshot(),
      refused: () => meter.refused(),
      setHealth,
      close: (graceMs = 2000) =>
        (closing ??= (async () => {
          setHealth('NOT_SERVING');
          unwatch();
          for (const session of [...sessions]) session.end(new TransportError('UNAVAILABLE', 'coordinator shutting down'));
          for (const watcher of watchers) watcher.end();
          watchers.clear();
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        })()),
    };
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const protocol = loadProtocol();
    const client = new protocol.coordinator(
      this.options.address,
      this.options.channelCredentials ?? grpc.credentials.createInsecure(),
      this.channelOptions,
    ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
    const metadata = (): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set(AGENT_ID_HEADER, credentials.agentId);
      m.set(TOKEN_HEADER, credentials.token);
      return m;
    };
    const timeout = this.options.callTimeoutMs ?? 30_000;
    const call = <Res>(method: string, request: WireObject, decode: (wire: unknown) => Res): Promise<Res> =>
      new Promise<Res>((resolve, reject) => {
        client[method]!(request, metadata(), { deadline: Date.now() + timeout }, (err: grpc.ServiceError | null, response: unknown) => {
          if (err) reject(toGrpcTransportError(err));
          else {
            try {
              resolve(decode(response));
            } catch (decodeErr) {
              reject(toGrpcTransportError(decodeErr));
            }
          }
        });
      });
    const streams = new Set<grpc.ClientDuplexStream<WireObject, WireObject>>();
    async function* fetchSnapshot(request: WireObject): AsyncGenerator<SnapshotChunk> {
      const stream = client.FetchSnapshot!(request, metadata(), { deadline: Date.now() + timeout }) as grpc.ClientReadableStream<WireObject>;
      let complete = false;
      try {
        for await (const wire of stream) yield wireCodecs.snapshotChunk.decode(wire);
        complete = true;
      } catch (err) {
        throw toGrpcTransportError(err);
      } finally {
        if (!complete) stream.cancel();
      }
    }

    return {
      join: (request) => call('Join', wireCodecs.joinRequest.encode(request), wireCodecs.joinAccepted.decode),
      fetchLog: (request) => call('FetchLog', wireCodecs.fetchLogRequest.encode(request), wireCodecs.fetchLogResponse.decode),
      fetchSnapshot: (request) => fetchSnapshot(wireCodecs.snapshotRequest.encode(request)),
      session: (listener): ClientSession => {
        const stream = client.Session!(metadata()) as grpc.ClientDuplexStream<WireObject, WireObject>;
        streams.add(stream);
        let done = false;
        const close = (error?: TransportError): void => {
          if (done) return;
          done = true;
          streams.delete(stream);
          listener.closed(error);
        };
        stream.on('data', (wire: unknown) => {
          if (done) return;
          let message: CoordinatorMessage;
          try {
            message = wireCodecs.coordinatorMessage.decode(wire);
          } catch (err) {
            listener.invalid(toGrpcTransportError(err));
            return;
          }
          listener.message(message);
        });
        stream.on('error', (err) => close(toGrpcTransportError(err)));
        stream.on('status', (status: grpc.StatusObject) =>
          close(status.code === grpc.status.OK ? undefined : new TransportError(statusName(status.code), status.details)),
        );
        return {
          send: (message) => {
            if (done) return false;
            stream.write(wireCodecs.agentMessage.encode(message));
            return true;
          },
          end: () => {
            if (!done) stream.cancel();
          },
        };
      },
      close: () => {
        for (const stream of streams) stream.cancel();
        client.close();
      },
    };
  }
}

/** Asks a server's grpc.health.v1 Check for `service` ('' for the whole server). */
export function checkHealth(
  address: string,
  service = '',
  timeoutMs = 5000,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): Promise<string> {
  const protocol = loadProtocol();
  const client = new protocol.health(address, credentials) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  return new Promise<string>((resolve, reject) => {
    client.Check!({ service }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, response: { status: string }) => {
      client.close();
      if (err) reject(toGrpcTransportError(err));
      else resolve(response.status);
    });
  });
}
