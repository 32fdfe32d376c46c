import { pino, type Logger } from 'pino';

/**
 * The process-wide structured logger. It writes JSON lines to stderr so that stdout stays free for command
 * output (tables, --json reports). MEZO_LOG_LEVEL sets the level (default 'info'; 'silent' mutes it).
 */
export const logger: Logger = pino(
  { name: 'mezo', level: process.env.MEZO_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: true }),
);
