/**
 * One Session on the coordinator's side of NATS: the framed-session core's server end
 * (../framed-session/server-session.ts: uplink in order, held until the handler listens, the end reported
 * once) with what NATS adds, the session key and sequence numbers (proof.ts). The listener (listener.ts)
 * routes uplink messages to it and publishes what it sends.
 */
import type { TransportError } from '../errors.js';
import { FramedServerSession } from '../framed-session/index.js';
import type { CoordinatorMessage } from '../messages.js';
import type { CallInfo } from '../transport.js';
import type { NatsListener } from './listener.js';

export class NatsServerSession extends FramedServerSession {
  /** With app tokens: the session key every uplink message is authenticated with, and the last sequence used. */
  key: Buffer | undefined;
  lastSeq = 0;
  /** The sequence number of the last downlink message sent under the key. */
  downSeq = 0;

  constructor(
    private readonly owner: NatsListener,
    info: CallInfo,
    id: string,
    openedAt: number,
  ) {
    super(info, id, openedAt);
  }

  protected sendFrame(message: CoordinatorMessage): boolean {
    return this.owner.sendTo(this, message);
  }

  protected sendEndFrame(error: TransportError | undefined): void {
    this.owner.publishEnd(this, error);
  }

  protected forgotten(): void {
    this.owner.forget(this);
  }
}
