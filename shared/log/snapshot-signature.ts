/**
 * What identifies a snapshot of the weights, as the coordinator signs it for agents that catch up by snapshot:
 * without it an agent would take the weights, and the chain head it continues from, on the word of whoever
 * answered its FetchSnapshot. The statement (log-signature.ts, LogSigner.signStatement) covers the job's
 * genesis hash, the version, the hash of the log entry at that version, the SHA-256 of the weights and their
 * size, so a signature fits one snapshot of one job only; the agent checks it with the log key it pinned.
 */
export const SNAPSHOT_STATEMENT = 'snapshot';

export interface SnapshotIdentity {
  genesisHash: string;
  version: number;
  entryHash: string;
  weightsSha256: string;
  totalBytes: number;
}

export function snapshotStatementFields(s: SnapshotIdentity): string[] {
  return [s.genesisHash, String(s.version), s.entryHash, s.weightsSha256, String(s.totalBytes)];
}
