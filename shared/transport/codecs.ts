/**
 * The protocol's codecs, one place for all three transports: each message encoded to and validated from its
 * wire object by messages.ts (wireCodecs: what gRPC's service definition serializes), and for the transports
 * that move bytes themselves (in-memory, NATS) serialized by the gRPC service's own proto-loader serializers
 * (getCodecs), so every transport puts the same bytes on the wire and every decoded message is validated
 * before anyone sees it.
 */
import { TransportError } from './errors.js';
import {
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
import { loadProtocol } from './proto.js';

/** A message to and from the plain object proto-loader serializes (gRPC hands and takes these objects). */
export interface WireCodec<T> {
  encode(message: T): Record<string, unknown>;
  /** Validates (messages.ts): a MessageValidationError names the offending field. */
  decode(wire: unknown): T;
}

/** A message to and from its protobuf bytes (the in-memory and NATS transports move these bytes). */
export interface Codec<T> {
  encode(message: T): Buffer;
  decode(bytes: Uint8Array): T;
}

const wire = <T>(encode: (message: T) => Record<string, unknown>, decode: (wire: unknown) => T): WireCodec<T> => ({ encode, decode });

/** Each message of the protocol, by role, in its object form (what a gRPC service definition serializes). */
export const wireCodecs = {
  joinRequest: wire(encodeJoinRequest, decodeJoinRequest),
  joinAccepted: wire(encodeJoinAccepted, decodeJoinAccepted),
  fetchLogRequest: wire(encodeFetchLogRequest, decodeFetchLogRequest),
  fetchLogResponse: wire(encodeFetchLogResponse, decodeFetchLogResponse),
  snapshotRequest: wire(encodeFetchSnapshotRequest, decodeFetchSnapshotRequest),
  snapshotChunk: wire(encodeSnapshotChunk, decodeSnapshotChunk),
  agentMessage: wire(encodeAgentMessage, decodeAgentMessage),
  coordinatorMessage: wire(encodeCoordinatorMessage, decodeCoordinatorMessage),
} as const;

export interface Codecs {
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

/** The byte codecs: wireCodecs serialized by the gRPC service's own serializers, built once. */
export function getCodecs(): Codecs {
  if (codecs) return codecs;
  const service = loadProtocol().coordinator.service;
  const make = <T>(
    serialize: (value: unknown) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    pair: WireCodec<T>,
    what: string,
  ): Codec<T> => ({
    encode: (message) => serialize(pair.encode(message)),
    decode: (bytes) => {
      let decoded: unknown;
      try {
        decoded = deserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      } catch (err) {
        throw new TransportError('INVALID_ARGUMENT', `${what}: not a valid protobuf message (${(err as Error).message})`, { cause: err });
      }
      return pair.decode(decoded);
    },
  });
  const join = service.Join!;
  const fetchLog = service.FetchLog!;
  const snapshot = service.FetchSnapshot!;
  const session = service.Session!;
  const w = wireCodecs;
  codecs = {
    joinRequest: make(join.requestSerialize, join.requestDeserialize, w.joinRequest, 'join'),
    joinAccepted: make(join.responseSerialize, join.responseDeserialize, w.joinAccepted, 'joinAccepted'),
    fetchLogRequest: make(fetchLog.requestSerialize, fetchLog.requestDeserialize, w.fetchLogRequest, 'fetchLog'),
    fetchLogResponse: make(fetchLog.responseSerialize, fetchLog.responseDeserialize, w.fetchLogResponse, 'fetchLogResponse'),
    snapshotRequest: make(snapshot.requestSerialize, snapshot.requestDeserialize, w.snapshotRequest, 'fetchSnapshot'),
    snapshotChunk: make(snapshot.responseSerialize, snapshot.responseDeserialize, w.snapshotChunk, 'snapshotChunk'),
    agentMessage: make(session.requestSerialize, session.requestDeserialize, w.agentMessage, 'message'),
    coordinatorMessage: make(session.responseSerialize, session.responseDeserialize, w.coordinatorMessage, 'message'),
  };
  return codecs;
}
