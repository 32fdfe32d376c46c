/**
 * One Session on the coordinator's side of NATS: the uplink messages of one agent's session in order (held
 * until the handler listens), its session key and sequence numbers (proof.ts), and its end reported once. The
 * listener (listener.ts) routes messages to it and publishes what it sends.
 */
import { getCodecs } from '../codecs.js';
import type { TransportError } from '../errors.js';
import type { AgentMessage, CoordinatorMessage } from '../messages.js';
import type { CallInfo, ServerSession, StreamListener } from '../transport.js';
import type { NatsListener } from './listener.js';
import { asTransportError } from './wire.js';

export class NatsServerSession implements ServerSession {
  private listener: StreamListener<AgentMessage> | undefined;
  private backlog: Uint8Array[] = [];
  ended = false;
  /** With app tokens: the session key every uplink message is authenticated with, and the last sequence used. */
  key: Buffer | undefined;
  lastSeq = 0;
  /** The sequence number of the last downlink message sent under the key. */
  downSeq = 0;
  private closeReported = false;
  private closeReason: TransportError | undefined;

  constructor(
    private readonly owner: NatsListener,
    readonly info: CallInfo,
    readonly id: string,
    readonly openedAt: number,
  ) {}

  send(message: CoordinatorMessage): boolean {
    if (this.ended) return false;
    return this.owner.sendTo(this, message);
  }

  end(error?: TransportError): void {
    if (this.ended) return;
    this.owner.publishEnd(this, error);
    this.finish(error);
  }

  listen(listener: StreamListener<AgentMessage>): void {
    this.listener = listener;
    const waiting = this.backlog;
    this.backlog = [];
    waiting.forEach((bytes) => this.deliver(bytes));
    if (this.ended) this.report();
  }

  /** A message on the uplink, in order. */
  receive(bytes: Uint8Array): void {
    if (this.ended) return;
    if (this.listener) this.deliver(bytes);
    else this.backlog.push(bytes);
  }

  private deliver(bytes: Uint8Array): void {
    if (this.ended) return;
    let message: AgentMessage;
    try {
      message = getCodecs().agentMessage.decode(bytes);
    } catch (err) {
      this.listener!.invalid(asTransportError(err));
      return;
    }
    this.listener!.message(message);
  }

  /** The agent ended the session (or it ended here): report it once. */
  finish(error?: TransportError): void {
    if (!this.ended) {
      this.ended = true;
      this.backlog = [];
      this.closeReason = error;
      this.owner.forget(this);
    }
    if (this.listener) this.report();
  }

  private report(): void {
    if (this.closeReported) return;
    this.closeReported = true;
    this.listener!.closed(this.closeReason);
  }
}
