/**
 * What the NATS transport's two sides share on the wire besides the messages themselves: statuses in headers
 * (a status name of errors.ts, as gRPC carries them), nats.js errors mapped to TransportErrors, size limits,
 * and snapshot pieces cut to fit one NATS message.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs } from 'nats';
import { TransportError, statusFromName, toTransportError } from '../errors.js';
import type { SnapshotChunk } from '../messages.js';
import { NATS_HEADERS } from './subjects.js';

export function asTransportError(err: unknown, what = 'NATS call'): TransportError {
  if (err instanceof TransportError) return err;
  const code = (err as { code?: string })?.code;
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  switch (code) {
    case '503':
      return new TransportError('UNAVAILABLE', `${what}: no coordinator is listening`, { cause: err });
    case 'TIMEOUT':
      return new TransportError('DEADLINE_EXCEEDED', message, { cause: err });
    case 'PERMISSIONS_VIOLATION':
      return new TransportError('PERMISSION_DENIED', message, { cause: err });
    case 'AUTHORIZATION_VIOLATION':
    case 'AUTHENTICATION_EXPIRED':
      return new TransportError('UNAUTHENTICATED', message, { cause: err });
    case 'MAX_PAYLOAD_EXCEEDED':
      return new TransportError('RESOURCE_EXHAUSTED', message, { cause: err });
    default:
      return toTransportError(err, 'UNAVAILABLE', what);
  }
}

/** Header values are one line of text; long messages are cut. */
const headerText = (text: string): string => text.replace(/[\r\n]+/g, ' ').slice(0, 1000);

export function statusHeaders(error: TransportError | undefined, extra?: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  h.set(NATS_HEADERS.status, error?.code ?? 'OK');
  if (error) h.set(NATS_HEADERS.message, headerText(error.message));
  for (const [key, value] of Object.entries(extra ?? {})) h.set(key, value);
  return h;
}

/** The error a reply or an end message carries; undefined for success. */
export function statusOf(msg: Msg): TransportError | undefined {
  const code = msg.headers?.get(NATS_HEADERS.status) ?? '';
  if (code === '' || code === 'OK') return undefined;
  return new TransportError(statusFromName(code), msg.headers?.get(NATS_HEADERS.message) || `coordinator replied ${code}`);
}

export function endHeaders(error: TransportError | undefined): MsgHdrs {
  return statusHeaders(error, { [NATS_HEADERS.control]: 'end' });
}

/** Waits for `promise` (ignoring its failure) but no longer than `ms`. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export const oversize = (bytes: number, limit: number, what: string): TransportError =>
  new TransportError('RESOURCE_EXHAUSTED', `${what} of ${bytes} bytes is larger than the ${limit}-byte limit`);

/** Cuts chunks into pieces of at most `pieceBytes` data bytes (offsets adjusted), so each fits one NATS message. */
export function* pieces(chunks: Iterable<SnapshotChunk>, pieceBytes: number): Generator<SnapshotChunk> {
  for (const chunk of chunks) {
    if (chunk.data.length <= pieceBytes) {
      yield chunk;
      continue;
    }
    for (let at = 0; at < chunk.data.length; at += pieceBytes) {
      yield { ...chunk, offset: chunk.offset + at, data: chunk.data.subarray(at, Math.min(chunk.data.length, at + pieceBytes)) };
    }
  }
}
