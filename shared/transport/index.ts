/**
 * Coordinator–agent transport (docs/protocol.md): typed, validated messages, one Transport interface, and its
 * gRPC and in-memory implementations.
 */
export * from './errors.js';
export * from './messages.js';
export * from './wire-size.js';
export type * from './transport.js';
export { GrpcTransport, checkHealth, AGENT_ID_HEADER, TOKEN_HEADER, COORDINATOR_SERVICE, type GrpcTransportOptions } from './grpc-transport.js';
export { InMemoryTransport, type InMemoryTransportOptions } from './in-memory-transport.js';
export { loadProtocol, protoDir, LOADER_OPTIONS } from './proto.js';
export { serverTlsCredentials, clientTlsCredentials, TlsConfigError, type ServerTlsFiles, type ClientTlsFiles } from './tls.js';
