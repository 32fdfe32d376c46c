export {
  LogFormatError,
  MAX_TERMS_PER_ENTRY,
  decodeEntryPayload,
  encodeEntryPayload,
  hashPayload,
  type LogEntry,
  type UpdateTerm,
} from './log-entry.js';
export {
  LOG_FORMAT,
  LogCorruptError,
  UpdateLog,
  genesisHash,
  verifyRecord,
  logHeaderSchema,
  type AppendInput,
  type LogHeader,
  type LogHeaderInput,
  type LogStorage,
  type TailRecovery,
} from './update-log.js';
export { applyDecay, replay, type ReplayOptions } from './replay.js';
