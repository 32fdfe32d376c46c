/**
 * The coordinator's end of one session over a framed link. What every link shares lives here: the uplink held
 * in order until the handler listens, decoded and validated on receipt, the end reported to the handler once,
 * sending refused once the session is over. A link supplies how a message and an end frame reach the agent,
 * and what to do when the session is gone (drop it from its table).
 */
import { getCodecs } from '../codecs.js';
import type { TransportError } from '../errors.js';
import type { AgentMessage, CoordinatorMessage } from '../messages.js';
import type { CallInfo, ServerSession, StreamListener } from '../transport.js';
import { SessionInbox, type SessionInboxOptions } from './inbox.js';

export abstract class FramedServerSession implements ServerSession {
  private readonly inbox: SessionInbox<AgentMessage>;

  constructor(
    readonly info: CallInfo,
    /** Unique among the link's open sessions. */
    readonly id: string,
    /** Position of the open on the link's clock (a link that publishes once for many sessions compares it). */
    readonly openedAt: number,
    /** How the end reaches the handler (at once by default; `reportEndLater` on a later turn, as gRPC does). */
    inbox: SessionInboxOptions = {},
  ) {
    this.inbox = new SessionInbox(inbox);
  }

  /** Moves a message to the agent; false when the link failed (the link ends the session). */
  protected abstract sendFrame(message: CoordinatorMessage): boolean;
  /** Tells the agent the session is over, with `error` when it is not a clean end. */
  protected abstract sendEndFrame(error: TransportError | undefined): void;
  /** The session is over: the link drops it. */
  protected abstract forgotten(): void;

  get ended(): boolean {
    return this.inbox.ended;
  }

  send(message: CoordinatorMessage): boolean {
    if (this.ended) return false;
    return this.sendFrame(message);
  }

  end(error?: TransportError): void {
    if (this.ended) return;
    this.sendEndFrame(error);
    this.finish(error);
  }

  listen(listener: StreamListener<AgentMessage>): void {
    this.inbox.attach(listener);
  }

  /** An uplink frame's bytes, in order. */
  receive(bytes: Uint8Array): void {
    this.inbox.receive(bytes, (b) => getCodecs().agentMessage.decode(b));
  }

  /** The agent ended the session (or the link did): reported to the handler once. */
  finish(error?: TransportError): void {
    if (this.inbox.finish(error)) this.forgotten();
  }

  /** The handler refused the session: over, with nothing reported to it (the agent is told by the link). */
  refuse(): void {
    if (this.ended) return;
    this.inbox.discard();
    this.forgotten();
  }
}
