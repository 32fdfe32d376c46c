/**
 * The agent's end of one session over a framed link. Shared by every link: the open's states (opening, open,
 * closed), uplink encoded, size-checked and held until the open is answered, the downlink decoded and handed
 * over in order, a liveness clock (when the coordinator was last heard; liveness.ts reads it), and the end
 * reported once on a later turn of the event loop, as gRPC reports it. A link supplies how an uplink frame
 * and an end frame leave, and what to do when the session is over.
 */
import { getCodecs } from '../codecs.js';
import { TransportError } from '../errors.js';
import type { AgentMessage, CoordinatorMessage } from '../messages.js';
import type { ClientSession, StreamListener } from '../transport.js';
import { tooLarge } from './end-frame.js';
import { SessionInbox } from './inbox.js';

export type ClientSessionState = 'opening' | 'open' | 'closed';

export abstract class FramedClientSession implements ClientSession {
  /** When the coordinator was last heard on this session (Date.now()). */
  lastHeard = Date.now();
  protected state: ClientSessionState = 'opening';
  private queued: Uint8Array[] = [];
  private readonly inbox = new SessionInbox<CoordinatorMessage>({ reportEndLater: true });

  constructor(
    listener: StreamListener<CoordinatorMessage>,
    /** Largest encoded message sent or taken. */
    readonly maxBytes: number,
    /** Silence after which the session is over (liveness.ts); Infinity on a link that cannot lose frames silently. */
    readonly livenessMs: number = Infinity,
  ) {
    this.inbox.attach(listener);
  }

  /** Sends one uplink frame; false when the link failed (it then ends the session or leaves that to the caller). */
  protected abstract sendFrame(bytes: Uint8Array): boolean;
  /** Tells the coordinator the session is over, and why. */
  protected abstract sendEndFrame(error: TransportError): void;
  /** The session is over: the link drops it. */
  protected abstract forgotten(): void;

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The coordinator answered the open: held uplink goes out in order. False when the link failed on the way. */
  protected opened(): boolean {
    if (this.closed) return false;
    this.state = 'open';
    this.heard();
    const waiting = this.queued;
    this.queued = [];
    for (const bytes of waiting) if (!this.sendFrame(bytes)) return false;
    return true;
  }

  /** A sign of life from the coordinator. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  send(message: AgentMessage): boolean {
    if (this.closed) return false;
    const bytes = getCodecs().agentMessage.encode(message);
    if (bytes.length > this.maxBytes) {
      this.abort(tooLarge(bytes.length, this.maxBytes, 'message'));
      return true;
    }
    if (this.state === 'opening') this.queued.push(bytes);
    else this.sendFrame(bytes);
    return true;
  }

  end(): void {
    this.abort(new TransportError('CANCELLED', 'agent ended the session'));
  }

  /** Ends the session here and tells the coordinator why. */
  abort(error: TransportError): void {
    if (this.closed) return;
    this.sendEndFrame(error);
    this.closeWith(error);
  }

  /** A downlink frame's bytes: checked against the size limit and decoded (an invalid one is reported, not taken). */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (bytes.length > this.maxBytes) {
      this.abort(tooLarge(bytes.length, this.maxBytes, 'message'));
      return;
    }
    this.inbox.receive(bytes, (b) => getCodecs().coordinatorMessage.decode(b));
  }

  /** A message already decoded (one broadcast decoded once for many sessions). */
  deliver(message: CoordinatorMessage): void {
    if (!this.closed) this.inbox.message(message);
  }

  invalid(error: TransportError): void {
    if (!this.closed) this.inbox.invalid(error);
  }

  /** The session is over here (the coordinator's end frame, a lost link, a refused open); reported once. */
  closeWith(error: TransportError | undefined): void {
    if (this.closed) return;
    this.state = 'closed';
    this.queued = [];
    this.forgotten();
    this.inbox.finish(error);
  }
}
