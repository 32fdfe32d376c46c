/**
 * Transport errors carry a gRPC status name, whichever transport raised them, so the coordinator and the agent
 * decide what to do (retry, give up, count a rejection) from the code alone.
 */

export const STATUS_CODES = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type StatusName = keyof typeof STATUS_CODES;

const NAMES = new Map<number, StatusName>(Object.entries(STATUS_CODES).map(([name, code]) => [code, name as StatusName]));

export function statusName(code: number): StatusName {
  return NAMES.get(code) ?? 'UNKNOWN';
}

/** A status name read off the wire (a NATS header, a text field); UNKNOWN for anything that is not one. */
export function statusFromName(name: string): StatusName {
  return Object.hasOwn(STATUS_CODES, name) ? (name as StatusName) : 'UNKNOWN';
}

export class TransportError extends Error {
  override name = 'TransportError';
  readonly code: StatusName;

  constructor(code: StatusName, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  get numericCode(): number {
    return STATUS_CODES[this.code];
  }
}

/**
 * Any thrown value as a TransportError: itself when it already is one, else `code` with its message (prefixed
 * with `what` when given). Each transport maps its own library's errors first (gRPC status codes, nats.js error
 * codes) and leaves the rest to this.
 */
export function toTransportError(err: unknown, code: StatusName = 'INTERNAL', what?: string): TransportError {
  if (err instanceof TransportError) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new TransportError(code, what === undefined ? text : `${what}: ${text}`, { cause: err });
}

/** A decoded message failed validation; `field` is the dotted path of the first offending field. */
export class MessageValidationError extends TransportError {
  override name = 'MessageValidationError';
  readonly field: string;

  constructor(field: string, message: string) {
    super('INVALID_ARGUMENT', `${field}: ${message}`);
    this.field = field;
  }
}

/** Errors a retry cannot fix: the caller should stop rather than reconnect. */
export function isPermanent(error: unknown): boolean {
  return error instanceof TransportError && (error.code === 'UNAUTHENTICATED' || error.code === 'PERMISSION_DENIED');
}
