export {
  LogFormatError,
  MAX_TERMS_PER_ENTRY,
  RECORD_KIND_REBASE,
  RECORD_KIND_UPDATE,
  decodeEntryPayload,
  encodeEntryPayload,
  hashPayload,
  type EntryKind,
  type LogEntry,
  type UpdateTerm,
} from './log-entry.js';
export {
  LOG_FORMAT,
  LogCorruptError,
  LogDurabilityError,
  UpdateLog,
  genesisHash,
  verifyRecord,
  logHeaderSchema,
  type AppendInput,
  type LogHeader,
  type LogHeaderInput,
  type LogStorage,
  type RebaseInput,
  type TailRecovery,
  type UpdateLogOptions,
} from './update-log.js';
export { LogKeyError, LogSigner, LogVerifier, parseLogPublicKey, SIGNATURE_PATTERN } from './log-signature.js';
export { SNAPSHOT_STATEMENT, snapshotStatementFields, type SnapshotIdentity } from './snapshot-signature.js';
export { applyDecay, replay, replayStep, replaySteps, type ReplayOptions, type ReplayStep } from './replay.js';
export { verifyEntry, type EntryFault, type VerifyEntryOptions } from './verify-entry.js';
export {
  openJetStreamLog,
  readLogStream,
  splitLogRecord,
  entryFromMessage,
  SIGNATURE_HEADER,
  JetStreamLogStorage,
  JetStreamLogError,
  LogConflictError,
  type JetStreamLogOptions,
} from './jetstream-log.js';
export { CoefficientSums, CompactionError, collapseTerms, lastRebaseIndex, verifyRebases } from './compaction.js';
