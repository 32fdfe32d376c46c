/**
 * Update-log entries and their canonical binary form. The hash chain is computed over these bytes (not over
 * JSON, whose number formatting is not a contract), so every replica and language derives the same hashes.
 *
 * Record payload, little-endian, by its first byte (the kind):
 *   kind 1, update: u8 kind · u64 version · u64 round · 32 B previous hash · f64 learning rate · f32 decay ·
 *     u32 term count · term count × (u64 seed · f32 coefficient)
 *   kind 2, rebase: u8 kind · u64 version · u64 round · 32 B previous hash · u32 term count ·
 *     term count × (u64 seed · f32 coefficient sum), seeds strictly ascending
 * hash = SHA-256(payload). A rebase re-anchors the weights: θ := base + Σ sum_k·z(seed_k), applied in the
 * record's order (compaction.ts defines the sums). It has no learning rate or decay of its own: its entry
 * reads lr 0 and decay 1, and only those values encode, so one record has exactly one entry form.
 */
import { createHash } from 'node:crypto';
import { PackedEntries, type Seed } from '../noise/index.js';

export const RECORD_KIND_UPDATE = 1;
export const RECORD_KIND_REBASE = 2;
const FIXED_PAYLOAD_BYTES = 1 + 8 + 8 + 32 + 8 + 4 + 4;
const FIXED_REBASE_BYTES = 1 + 8 + 8 + 32 + 4;
const TERM_BYTES = 12;
/** A corrupt length must not make a reader allocate gigabytes: one entry holds at most this many terms. */
export const MAX_TERMS_PER_ENTRY = 1 << 20;

/** One (seed, coefficient) term: θ += coeff · z(seed). The coefficient is binary32, as the kernel applies it. */
export interface UpdateTerm {
  seed: bigint;
  coeff: number;
}

/** 'update': θ += Σ coeff·z(seed) after the decay. 'rebase': θ := base + Σ coeff·z(seed) (compaction). */
export type EntryKind = 'update' | 'rebase';

export interface LogEntry {
  kind: EntryKind;
  /** 1-based position: the weights at version v are the base plus entries 1..v applied in order. */
  version: number;
  /** Training round (or local step) that produced the entry. */
  round: number;
  /** Hex SHA-256 of the previous entry (the log's genesis hash for version 1). */
  prevHash: string;
  /** Learning rate in force, for the record; the coefficients already include it. */
  lr: number;
  /**
   * Weight-decay multiplier (binary32): before the terms, every element in the log header's decay ranges is
   * multiplied by it. 1 means no decay.
   */
  decay: number;
  terms: UpdateTerm[];
  /** Hex SHA-256 of this entry's canonical payload. */
  hash: string;
  /**
   * The coordinator's Ed25519 signature of `hash` (128 hex digits, log-signature.ts); absent in logs nobody
   * signs (local training, in-memory simulations without a key). Not part of the payload, so not of the hash.
   */
  signature?: string;
}

export type UnsignedLogEntry = Omit<LogEntry, 'hash' | 'signature'>;

export class LogFormatError extends Error {
  override name = 'LogFormatError';
}

function checkEntryFields(entry: UnsignedLogEntry): void {
  if (!Number.isSafeInteger(entry.version) || entry.version < 1) {
    throw new LogFormatError(`entry.version must be a positive safe integer, got ${entry.version}`);
  }
  if (!Number.isSafeInteger(entry.round) || entry.round < 0) {
    throw new LogFormatError(`entry.round must be a non-negative safe integer, got ${entry.round}`);
  }
  if (!/^[0-9a-f]{64}$/.test(entry.prevHash)) {
    throw new LogFormatError(`entry.prevHash must be 64 lowercase hex digits, got ${JSON.stringify(entry.prevHash)}`);
  }
  if (!Number.isFinite(entry.lr)) throw new LogFormatError(`entry.lr must be finite, got ${entry.lr}`);
  if (typeof entry.decay !== 'number' || Math.fround(entry.decay) !== entry.decay || !(entry.decay > 0 && entry.decay <= 1)) {
    throw new LogFormatError(`entry.decay must be a binary32 value in (0, 1], got ${entry.decay}`);
  }
  if (!Array.isArray(entry.terms) || entry.terms.length > MAX_TERMS_PER_ENTRY) {
    throw new LogFormatError(`entry.terms must be an array of at most ${MAX_TERMS_PER_ENTRY} terms`);
  }
  if (entry.kind === 'rebase') {
    if (entry.lr !== 0) throw new LogFormatError(`entry.lr must be 0 in a rebase record, got ${entry.lr}`);
    if (entry.decay !== 1) throw new LogFormatError(`entry.decay must be 1 in a rebase record, got ${entry.decay}`);
  } else if (entry.kind !== 'update') {
    throw new LogFormatError(`entry.kind must be 'update' or 'rebase', got ${JSON.stringify(entry.kind)}`);
  }
}

/** A rebase lists each seed once, ascending (unsigned 64-bit order), so its record is canonical. */
function checkRebaseOrder(packed: PackedEntries): void {
  for (let k = 1; k < packed.length; k++) {
    const hiA = packed.keys[2 * k - 1]!;
    const hiB = packed.keys[2 * k + 1]!;
    if (hiB > hiA || (hiB === hiA && packed.keys[2 * k]! > packed.keys[2 * k - 2]!)) continue;
    throw new LogFormatError(`entry.terms[${k}].seed must be above entry.terms[${k - 1}].seed: a rebase lists each seed once, ascending`);
  }
}

/** Encodes an entry's canonical payload; validates every field (terms through the noise engine's rules). */
export function encodeEntryPayload(entry: UnsignedLogEntry): Buffer {
  checkEntryFields(entry);
  const packed = PackedEntries.from(entry.terms, 'entry.terms');
  const rebase = entry.kind === 'rebase';
  if (rebase) checkRebaseOrder(packed);
  const payload = Buffer.alloc((rebase ? FIXED_REBASE_BYTES : FIXED_PAYLOAD_BYTES) + TERM_BYTES * packed.length);
  let at = payload.writeUInt8(rebase ? RECORD_KIND_REBASE : RECORD_KIND_UPDATE, 0);
  at = payload.writeBigUInt64LE(BigInt(entry.version), at);
  at = payload.writeBigUInt64LE(BigInt(entry.round), at);
  at += payload.write(entry.prevHash, at, 'hex');
  if (!rebase) {
    at = payload.writeDoubleLE(entry.lr, at);
    at = payload.writeFloatLE(entry.decay, at);
  }
  at = payload.writeUInt32LE(packed.length, at);
  for (let k = 0; k < packed.length; k++) {
    at = payload.writeUInt32LE(packed.keys[2 * k]!, at);
    at = payload.writeUInt32LE(packed.keys[2 * k + 1]!, at);
    at = payload.writeFloatLE(packed.coeffs[k]!, at);
  }
  return payload;
}

export function hashPayload(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('hex');
}

/** Decodes a payload written by encodeEntryPayload; throws LogFormatError on any inconsistency. */
export function decodeEntryPayload(payload: Buffer): UnsignedLogEntry {
  if (payload.length < 1) throw new LogFormatError('record payload is empty');
  const code = payload.readUInt8(0);
  if (code !== RECORD_KIND_UPDATE && code !== RECORD_KIND_REBASE) throw new LogFormatError(`unknown record kind ${code}`);
  const kind: EntryKind = code === RECORD_KIND_REBASE ? 'rebase' : 'update';
  const fixed = kind === 'rebase' ? FIXED_REBASE_BYTES : FIXED_PAYLOAD_BYTES;
  if (payload.length < fixed) throw new LogFormatError(`record payload too short (${payload.length} bytes)`);
  const version = Number(payload.readBigUInt64LE(1));
  const round = Number(payload.readBigUInt64LE(9));
  const prevHash = payload.toString('hex', 17, 49);
  const lr = kind === 'rebase' ? 0 : payload.readDoubleLE(49);
  const decay = kind === 'rebase' ? 1 : payload.readFloatLE(57);
  const count = payload.readUInt32LE(fixed - 4);
  if (count > MAX_TERMS_PER_ENTRY || payload.length !== fixed + TERM_BYTES * count) {
    throw new LogFormatError(`record declares ${count} terms but holds ${payload.length} bytes`);
  }
  const terms: UpdateTerm[] = new Array(count);
  for (let k = 0, at = fixed; k < count; k++, at += TERM_BYTES) {
    terms[k] = { seed: payload.readBigUInt64LE(at), coeff: payload.readFloatLE(at + 8) };
  }
  const entry: UnsignedLogEntry = { kind, version, round, prevHash, lr, decay, terms };
  checkEntryFields(entry);
  if (kind === 'rebase') checkRebaseOrder(PackedEntries.from(terms, 'entry.terms'));
  return entry;
}

/** Normalises caller terms (any Seed form, any finite number) to the stored form (bigint seed, binary32 coeff). */
export function normaliseTerms(terms: ReadonlyArray<{ seed: Seed; coeff: number }>): UpdateTerm[] {
  const packed = PackedEntries.from(terms as Array<{ seed: Seed; coeff: number }>, 'terms');
  return Array.from({ length: packed.length }, (_, k) => ({
    seed: BigInt(packed.keys[2 * k]!) | (BigInt(packed.keys[2 * k + 1]!) << 32n),
    coeff: packed.coeffs[k]!,
  }));
}

