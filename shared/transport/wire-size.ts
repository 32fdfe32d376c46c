/**
 * What a catch-up moves on the wire, computed rather than measured: the protobuf encoding of each message
 * plus gRPC's 5-byte frame per message. The encoders in messages.ts set every scalar field, and the serializer
 * writes a field that is set even at its default value (a zero round or offset still costs its tag and a byte). The
 * coordinator reports these sizes in JoinAccepted so an agent can pick the cheaper of FetchLog replay and
 * FetchSnapshot (docs/protocol.md, "Catch-up"). HTTP/2 frame and header overhead is left out of both alike.
 */
import type { LogEntry } from '../log/index.js';
import { MAX_ENTRIES_PER_PAGE, MAX_SNAPSHOT_CHUNK_BYTES } from './messages.js';

/** gRPC's length-prefixed message frame: 1 flag byte + 4 length bytes. */
export const GRPC_FRAME_BYTES = 5;
const HASH_FIELD = 1 + 1 + 64; // tag, length, 64 hex digits

export function varintBytes(value: number | bigint): number {
  let v = BigInt(value);
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** A scalar varint field (tag + value). */
const varintField = (value: number | bigint): number => 1 + varintBytes(value);
/** A length-delimited field (string, bytes, sub-message) of `length` bytes. */
const delimited = (length: number): number => 1 + varintBytes(length) + length;

/** Encoded size of one Update message (a log entry). */
export function updateBytes(entry: LogEntry): number {
  let terms = 0;
  for (const term of entry.terms) terms += delimited(varintField(term.seed) + 5);
  // round, version, terms, lr (double), decay (float), prev_hash, hash; kind only for a rebase (encodeUpdate);
  // the signature (128 hex characters) when the log is signed
  const kind = entry.kind === 'rebase' ? varintField(2) : 0;
  const signature = entry.signature === undefined ? 0 : delimited(entry.signature.length);
  return varintField(entry.round) + varintField(entry.version) + terms + 9 + 5 + HASH_FIELD * 2 + kind + signature;
}

/** The contribution of one entry to a FetchLogResponse (its repeated-field framing included). */
export const entryFieldBytes = (entry: LogEntry): number => delimited(updateBytes(entry));

/** Bytes of the FetchLog pages that carry `count` entries whose entry fields sum to `entryFields`, head `head`. */
export function fetchLogBytes(count: number, entryFields: number, head: number): number {
  if (count === 0) return 0;
  const pages = Math.ceil(count / MAX_ENTRIES_PER_PAGE);
  return entryFields + pages * (GRPC_FRAME_BYTES + varintField(head));
}

/** Bytes of a FetchSnapshot stream for a snapshot at `version` of `slabBytes` weight bytes, cut into `chunkBytes` slices. */
export function fetchSnapshotBytes(version: number, slabBytes: number, chunkBytes = MAX_SNAPSHOT_CHUNK_BYTES, signed = false): number {
  let total = 0;
  // A signed log's snapshot repeats its signature (128 hex digits) in every chunk.
  const signature = signed ? delimited(128) : 0;
  for (let offset = 0; offset < slabBytes; offset += chunkBytes) {
    const data = Math.min(chunkBytes, slabBytes - offset);
    total += GRPC_FRAME_BYTES + varintField(version) + HASH_FIELD * 2 + varintField(slabBytes) + varintField(offset) + delimited(data) + signature;
  }
  return total;
}
