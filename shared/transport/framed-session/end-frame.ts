/**
 * An end frame: how a session's end, or a call's outcome, is said on a link that carries text beside its
 * bytes (NATS headers, a WebSocket frame's header): a status name of errors.ts ('OK' for success) and, for a
 * failure, one line of text.
 */
import { TransportError, statusFromName } from '../errors.js';

export interface EndStatus {
  /** 'OK' or a status name. */
  status: string;
  /** The error's message, on one line and cut to MAX_STATUS_TEXT characters; absent for success. */
  message?: string;
}

/** Longest status text sent (a header value, not a log). */
export const MAX_STATUS_TEXT = 1000;

/** Status text is one line; long messages are cut. */
export const statusText = (text: string): string => text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_TEXT);

export function endStatus(error: TransportError | undefined): EndStatus {
  return error ? { status: error.code, message: statusText(error.message) } : { status: 'OK' };
}

/**
 * The error a status read off the wire stands for; undefined for success (an absent or 'OK' status). A name
 * that is not a status is UNKNOWN; a missing text says which status came.
 */
export function errorOfStatus(status: string | undefined, message: string | undefined): TransportError | undefined {
  const code = status ?? '';
  if (code === '' || code === 'OK') return undefined;
  return new TransportError(statusFromName(code), message || `coordinator replied ${code}`);
}

/** The error for a frame over a size limit. */
export const tooLarge = (bytes: number, limit: number, what: string): TransportError =>
  new TransportError('RESOURCE_EXHAUSTED', `${what} of ${bytes} bytes is larger than the ${limit}-byte limit`);
