/**
 * What the NATS transport's two sides share on the wire besides the messages themselves: end frames and call
 * outcomes as headers (the framed-session core's status name and text, ../framed-session/end-frame.ts, as
 * gRPC carries them), and nats.js errors mapped to TransportErrors.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs } from 'nats';
import { TransportError, toTransportError } from '../errors.js';
import { endStatus, errorOfStatus } from '../framed-session/index.js';
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

export function statusHeaders(error: TransportError | undefined, extra?: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  const { status, message } = endStatus(error);
  h.set(NATS_HEADERS.status, status);
  if (message !== undefined) h.set(NATS_HEADERS.message, message);
  for (const [key, value] of Object.entries(extra ?? {})) h.set(key, value);
  return h;
}

/** The error a reply or an end message carries; undefined for success. */
export function statusOf(msg: Msg): TransportError | undefined {
  return errorOfStatus(msg.headers?.get(NATS_HEADERS.status), msg.headers?.get(NATS_HEADERS.message));
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
