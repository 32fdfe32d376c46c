/**
 * The one check that a log entry is the coordinator's own record: signed with the log's key (log-signature.ts),
 * and its hash that of its contents. Every reader uses it: opening a log file, reading a JetStream stream, and
 * an agent taking broadcast updates and fetched records.
 */
import { encodeEntryPayload, hashPayload, type LogEntry } from './log-entry.js';
import type { LogVerifier } from './log-signature.js';

export interface EntryFault {
  /** 'unsigned': no signature; 'foreign-key': a signature that does not verify with the key; 'contents': the hash is not its contents'. */
  kind: 'unsigned' | 'foreign-key' | 'contents';
  /** Why, in words, without the entry's version: "not signed", "signed with another key", … */
  reason: string;
}

export interface VerifyEntryOptions {
  /**
   * Also check the hash against the entry's re-encoded contents (default true). Readers that took the entry
   * from its stored payload checked that already (verifyRecord), so they skip the second encoding.
   */
  contents?: boolean;
}

/** Undefined when `entry` is the log's record; else its first fault (the signature, then the contents). */
export function verifyEntry(entry: LogEntry, verifier: LogVerifier | undefined, options: VerifyEntryOptions = {}): EntryFault | undefined {
  if (verifier && !verifier.verify(entry.hash, entry.signature)) {
    return entry.signature === undefined ? { kind: 'unsigned', reason: 'not signed' } : { kind: 'foreign-key', reason: 'signed with another key' };
  }
  if (options.contents === false) return undefined;
  const { hash, signature: _signature, ...unsigned } = entry;
  try {
    if (hashPayload(encodeEntryPayload(unsigned)) !== hash) return { kind: 'contents', reason: 'hash does not match its contents' };
  } catch (err) {
    return { kind: 'contents', reason: (err as Error).message };
  }
  return undefined;
}
