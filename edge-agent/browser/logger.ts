/**
 * The browser bundle's stand-in for shared/logger.ts (scripts/build-browser-agent.mjs maps the import here): the
 * same `logger`, pino's browser build writing to the page's console (no file descriptors in a page), warnings
 * and errors only by default, with the same redaction of credentials as the Node logger.
 */
import { pino, type Logger } from 'pino';
import { LOG_REDACT_PATHS, REDACTED } from '../../shared/redact.js';

export const logger: Logger = pino({ name: 'mezo', level: 'warn', redact: { paths: LOG_REDACT_PATHS, censor: REDACTED }, browser: { asObject: false } });
