/**
 * The receiving end of one direction of a session: what arrives is held until a listener is attached, then
 * handed over in order as messages or (for what failed to decode) invalid reports, and the end is reported
 * exactly once, after everything received before it.
 */
import { toTransportError, type TransportError } from '../errors.js';
import type { StreamListener } from '../transport.js';

type Held<T> = { message: T } | { invalid: TransportError };

export interface SessionInboxOptions {
  /**
   * Report the end on a later turn of the event loop (as gRPC reports a stream's end), so a listener that ends
   * its own stream is not re-entered. Messages arriving after the end are dropped either way.
   */
  reportEndLater?: boolean;
}

export class SessionInbox<T> {
  private listener: StreamListener<T> | undefined;
  private held: Array<Held<T>> = [];
  private done = false;
  private reason: TransportError | undefined;
  private reported = false;

  constructor(private readonly options: SessionInboxOptions = {}) {}

  /** Whether the end has been received (nothing more is taken). */
  get ended(): boolean {
    return this.done;
  }

  /** Hands over what was held, then the end if it already came. Only the first listener counts. */
  attach(listener: StreamListener<T>): void {
    if (this.listener) return;
    this.listener = listener;
    const held = this.held;
    this.held = [];
    for (const item of held) this.hand(item);
    if (this.done) this.report();
  }

  message(message: T): void {
    this.take({ message });
  }

  invalid(error: TransportError): void {
    this.take({ invalid: error });
  }

  /** Bytes off the wire: decoded (a decoder that throws reports the message as invalid and drops it). */
  receive(bytes: Uint8Array, decode: (bytes: Uint8Array) => T): void {
    if (this.done) return;
    let message: T;
    try {
      message = decode(bytes);
    } catch (err) {
      this.invalid(toTransportError(err));
      return;
    }
    this.message(message);
  }

  /**
   * The end, cleanly or with an error; true the first time. What is still held (no listener yet) is dropped:
   * a stream that ended before anyone listened has nothing to say but its end.
   */
  finish(error?: TransportError): boolean {
    if (this.done) return false;
    this.done = true;
    this.reason = error;
    this.held = [];
    if (this.listener) this.report();
    return true;
  }

  /** Ends without reporting the end to anyone (a stream refused before its listener could care). */
  discard(): void {
    this.done = true;
    this.reported = true;
    this.held = [];
  }

  private take(item: Held<T>): void {
    if (this.done) return;
    if (this.listener) this.hand(item);
    else this.held.push(item);
  }

  private hand(item: Held<T>): void {
    if ('message' in item) this.listener!.message(item.message);
    else this.listener!.invalid(item.invalid);
  }

  private report(): void {
    if (this.reported) return;
    this.reported = true;
    const listener = this.listener!;
    const reason = this.reason;
    if (this.options.reportEndLater) setImmediate(() => listener.closed(reason));
    else listener.closed(reason);
  }
}
