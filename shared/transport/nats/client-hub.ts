/**
 * The agent side's shared subscriptions: per connection and job, one subscription for the update broadcast
 * and one for the downlink (one wildcard for every agent on a shared connection, or one per agent where the
 * NATS user may read only its own subjects), demultiplexed to the sessions (client-session.ts) by agent and
 * session id; the framed-session core's sweeper (../framed-session/liveness.ts) ends sessions that heard
 * nothing within their liveness window; a dropped or closed connection ends every session on it.
 */
import type { Msg, NatsConnection, Subscription } from 'nats';
import { getCodecs } from '../codecs.js';
import { TransportError } from '../errors.js';
import { LivenessSweeper, SessionTable, tooLarge } from '../framed-session/index.js';
import type { CoordinatorMessage } from '../messages.js';
import type { NatsClientSession } from './client-session.js';
import type { JobSubjects } from './subjects.js';
import { asTransportError } from './wire.js';

/** One connection's view of one job: the shared subscriptions and the sessions they feed. */
export class ClientHub {
  private readonly sessions = new SessionTable<NatsClientSession>();
  private broadcast: Subscription | undefined;
  private wildcard: Subscription | undefined;
  private readonly perAgent = new Map<string, { sub: Subscription; users: number }>();
  private readonly liveness = new LivenessSweeper(() => this.sessions.all());
  private statusWatch: { stop(): void } | undefined;
  private readonly codecs = getCodecs();

  constructor(
    private readonly nc: NatsConnection,
    readonly subjects: JobSubjects,
    private readonly perAgentDownlink: boolean,
    readonly maxBytes: number,
    private readonly onEmpty: () => void,
  ) {}

  private subscribe(subject: string, onMessage: (msg: Msg) => void): Subscription {
    return this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          // A refused subscription (permissions): the sessions it would feed cannot work.
          this.endAll(asTransportError(err, `subscription to ${subject}`));
          return;
        }
        try {
          onMessage(msg);
        } catch {
          // A listener's fault must not reach the connection's reader (and the other sessions on it).
        }
      },
    });
  }

  /** Registers a session before its open request goes out, so nothing sent to it can be missed. */
  attach(session: NatsClientSession): void {
    if (this.sessions.size === 0) this.start();
    this.sessions.add(session);
    if (this.perAgentDownlink) {
      const held = this.perAgent.get(session.agentId);
      if (held) held.users++;
      else this.perAgent.set(session.agentId, { sub: this.subscribe(this.subjects.downOf(session.agentId), (m) => this.onDown(m)), users: 1 });
    } else {
      this.wildcard ??= this.subscribe(this.subjects.downAll, (m) => this.onDown(m));
    }
    this.liveness.watch(session.livenessMs);
  }

  detach(session: NatsClientSession): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session);
    if (this.perAgentDownlink) {
      const held = this.perAgent.get(session.agentId);
      if (held && --held.users === 0) {
        this.perAgent.delete(session.agentId);
        if (!this.nc.isClosed()) held.sub.unsubscribe();
      }
    }
    if (this.sessions.size === 0) this.stop();
  }

  private start(): void {
    this.broadcast = this.subscribe(this.subjects.updates, (m) => this.onBroadcast(m));
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.statusWatch = { stop: () => status.stop?.() };
    void (async () => {
      for await (const event of status) {
        // Messages may have been lost while disconnected: the sessions are no longer whole.
        if (event.type === 'disconnect') this.endAll(new TransportError('UNAVAILABLE', 'the NATS connection dropped'));
      }
    })().catch(() => undefined);
  }

  private stop(): void {
    const open = !this.nc.isClosed();
    if (open) this.broadcast?.unsubscribe();
    if (open) this.wildcard?.unsubscribe();
    this.broadcast = undefined;
    this.wildcard = undefined;
    this.statusWatch?.stop();
    this.statusWatch = undefined;
    this.liveness.stop();
    this.onEmpty();
  }

  endAll(error: TransportError): void {
    for (const session of this.sessions.all()) session.closeWith(error);
  }

  private onDown(msg: Msg): void {
    const parsed = this.subjects.parse(msg.subject, 'down');
    if (!parsed) return;
    const session = this.sessions.get(parsed.last);
    if (!session || session.agentId !== parsed.agentId) return;
    session.onDown(msg);
  }

  /** Decoded once, handed to every session on this connection (each agent ignores updates it holds). */
  private onBroadcast(msg: Msg): void {
    if (msg.data.length > this.maxBytes) {
      for (const session of this.sessions.all()) session.abort(tooLarge(msg.data.length, this.maxBytes, 'update'));
      return;
    }
    let message: CoordinatorMessage;
    try {
      message = this.codecs.coordinatorMessage.decode(msg.data);
    } catch (err) {
      const error = asTransportError(err);
      for (const session of this.sessions.all()) session.invalid(error);
      return;
    }
    for (const session of this.sessions.all()) session.deliver(message);
  }
}

/** Hubs per connection and job (and downlink mode), so clients on one connection share subscriptions. */
const hubs = new WeakMap<NatsConnection, Map<string, ClientHub>>();

export function hubFor(nc: NatsConnection, subjects: JobSubjects, perAgent: boolean, maxBytes: number): ClientHub {
  let byKey = hubs.get(nc);
  if (!byKey) {
    byKey = new Map();
    hubs.set(nc, byKey);
    void nc.closed().then(() => {
      for (const hub of byKey!.values()) hub.endAll(new TransportError('UNAVAILABLE', 'the NATS connection closed'));
    });
  }
  const key = `${subjects.root}|${perAgent ? 'agent' : 'all'}|${maxBytes}`;
  let hub = byKey.get(key);
  if (!hub) {
    hub = new ClientHub(nc, subjects, perAgent, maxBytes, () => byKey!.delete(key));
    byKey.set(key, hub);
  }
  return hub;
}
