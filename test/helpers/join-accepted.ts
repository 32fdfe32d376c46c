import type { JoinAccepted } from '../../shared/transport/index.js';

/** A JoinAccepted for transport tests: a fresh job at version 0 whose hashes are all `sha`. */
export function joinAcceptedFixture(jobId: string, sha: string): JoinAccepted {
  return {
    jobId,
    distribution: 'gaussian',
    epsilon: 1e-3,
    baseSha256: sha,
    currentVersion: 0,
    headHash: sha,
    genesisHash: sha,
    decayRanges: [],
    heartbeatMs: 100,
    snapshotVersion: 0,
    snapshotBytes: 0,
    logBytes: 0,
    logBytesAfterSnapshot: 0,
    logFloor: 0,
  };
}
