/**
 * What the coordinator sends every agent, not just the ones a round asks: committed (durable) log entries,
 * batched per connection, and the end of the job.
 */
import type { LogEntry, UpdateLog } from '../shared/log/index.js';
import type { JobEnd, ServerSession } from '../shared/transport/index.js';

/** An agent as the broadcaster sees it: its open session, and the newest version sent on it. */
export interface BroadcastRecipient {
  session: ServerSession | undefined;
  /** Highest log version sent on the current session. */
  sentVersion: number;
}

export class Broadcaster {
  /** Update messages of entries not yet sent to every agent, by version (see broadcast). */
  private readonly updateMessages = new Map<number, { kind: 'update'; update: LogEntry }>();
  private flushTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** The JobEnd message: one object for every session, so gRPC and in-memory transports encode it once. */
  private endMessage: { kind: 'jobEnd'; jobEnd: JobEnd } | undefined;

  /**
   * @param intervalMs options.broadcastIntervalMs: the longest an entry waits to be sent to agents not asked in a round.
   * @param recipients every agent the coordinator knows, connected or not.
   */
  constructor(
    private readonly log: UpdateLog,
    private readonly intervalMs: number,
    private readonly recipients: () => Iterable<BroadcastRecipient>,
  ) {}

  /**
   * Sends a committed (durable) entry to every connected agent. Agents asked in a round get every entry they
   * have not been sent right before their task (deliverPending); the rest get them at the next flush, at most
   * options.broadcastIntervalMs later, several entries in one write per connection. The message object of an
   * entry is shared by all recipients, so the transport encodes it once.
   */
  broadcast(entry: LogEntry): void {
    this.updateMessages.set(entry.version, { kind: 'update', update: entry });
    if (this.flushTimer) return;
    const flush = (): void => {
      this.flushTimer = undefined;
      this.flush();
    };
    const interval = this.intervalMs;
    this.flushTimer = interval === 0 ? setImmediate(flush) : setTimeout(flush, interval);
  }

  /** Sends the agent's session every committed entry after the last one it was sent. */
  deliverPending(agent: BroadcastRecipient): void {
    const head = this.log.version;
    if (!agent.session || agent.sentVersion >= head) return;
    for (let version = agent.sentVersion + 1; version <= head; version++) {
      const message = this.updateMessages.get(version) ?? { kind: 'update' as const, update: this.log.entries(version - 1, version)[0]! };
      agent.session.send(message);
    }
    agent.sentVersion = head;
  }

  /** Sends every agent what it has not been sent yet, now. */
  flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer as NodeJS.Timeout);
      clearImmediate(this.flushTimer as NodeJS.Immediate);
      this.flushTimer = undefined;
    }
    for (const agent of this.recipients()) this.deliverPending(agent);
    const head = this.log.version;
    for (const version of this.updateMessages.keys()) if (version < head) this.updateMessages.delete(version);
  }

  /**
   * Tells every connected agent that the job ended, after every update it has not been sent yet; sessions opened
   * later hear it from sendJobEnd. Sessions stay open: an agent that leaves ends its own, one that waits for the
   * next job stays until the coordinator goes away.
   */
  announceEnd(jobEnd: JobEnd): void {
    this.flush();
    this.endMessage = { kind: 'jobEnd', jobEnd };
    for (const agent of this.recipients()) this.sendJobEnd(agent);
  }

  /** Once the job has ended: sends the agent's session its pending updates, then the end. */
  sendJobEnd(agent: BroadcastRecipient): void {
    const session = agent.session;
    if (!session || !this.endMessage) return;
    this.deliverPending(agent);
    session.send(this.endMessage);
  }
}
