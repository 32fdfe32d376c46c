/**
 * Coordinator–agent transport (docs/protocol.md): typed, validated messages, one Transport interface, and its
 * gRPC, NATS (nats/) and in-memory implementations.
 */
export * from './errors.js';
export * from './messages.js';
export * from './wire-size.js';
export type * from './transport.js';
export type { RefusedTraffic } from './traffic-meter.js';
export { ServiceHealth } from './health.js';
export { getCodecs, type Codec, type Codecs } from './codecs.js';
export { GrpcTransport, checkHealth, AGENT_ID_HEADER, TOKEN_HEADER, COORDINATOR_SERVICE, type GrpcTransportOptions } from './grpc-transport.js';
export { InMemoryTransport, type InMemoryTransportOptions } from './in-memory-transport.js';
export { loadProtocol, protoDir, LOADER_OPTIONS } from './proto.js';
export { serverTlsCredentials, clientTlsCredentials, TlsConfigError, type ServerTlsFiles, type ClientTlsFiles } from './tls.js';
export {
  NatsTransport,
  checkNatsHealth,
  connectNats,
  natsConnectionOptions,
  defaultNatsConnect,
  nodeFileReader,
  createNatsUserNkey,
  agentPermissions,
  coordinatorPermissions,
  natsJobAuthConfig,
  NatsConfigError,
  jobSubjects,
  logStreamName,
  subjectToken,
  fromSubjectToken,
  DEFAULT_SUBJECT_PREFIX,
  NATS_HEADERS,
  type NatsTransportOptions,
  type NatsAuth,
  type NatsTlsFiles,
  type NatsConnectOptions,
  type NatsConnectFn,
  type NatsFileReader,
  type NatsPermissions,
  type NatsUserCredential,
  type JobAuthConfig,
  type JobSubjects,
  type RpcMethod,
} from './nats/index.js';
