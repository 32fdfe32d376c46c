import { pino, type Logger } from 'pino';
import { LOG_REDACT_PATHS, REDACTED } from './redact.js';

/**
 * The process-wide structured logger. It writes JSON lines to stderr so that stdout stays free for command
 * output (tables, --json reports). MEZO_LOG_LEVEL sets the level (default 'info'; 'silent' mutes it).
 */
export const logger: Logger = pino(
  // Credentials in a logged object are censored (shared/redact.ts): log lines end up in files and collectors.
  { name: 'mezo', level: process.env.MEZO_LOG_LEVEL ?? 'info', base: { pid: process.pid }, redact: { paths: LOG_REDACT_PATHS, censor: REDACTED } },
  pino.destination({ fd: 2, sync: true }),
);
