/**
 * The protocol's codecs: each message encoded by messages.ts and serialized by the gRPC service's own
 * proto-loader serializers, so every transport puts the same bytes on the wire and every decoded message is
 * validated (the decode* functions of messages.ts) before anyone sees it.
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

export interface Codec<T> {
  encode(message: T): Buffer;
  decode(bytes: Uint8Array): T;
}

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

export function getCodecs(): Codecs {
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
