/**
 * The coordinator's side of the NATS transport (docs/protocol.md, "NATS"): one subscription each for every
 * agent's requests, every session's uplink and the health check. Requests (Join, FetchLog, snapshot pieces,
 * Session opens) are checked against the proof of the agent's token (proof.ts) and answered with a status
 * header; sessions (server-session.ts) get their downlink under the session key; a committed update sent to
 * many sessions as one message object is published once on the broadcast subject; a session this coordinator
 * does not know (it restarted) is told so with an end signed by the log's key, rate-limited. The session
 * table, snapshot transfers and metering are the framed-session core's (../framed-session/).
 */
import { Empty, headers as natsHeaders, nuid, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { getCodecs } from '../codecs.js';
import { TransportError } from '../errors.js';
import { CallsInFlight, SessionTable, SnapshotTransfers, accepted, meteredCall, pieceBytesFor, tooLarge } from '../framed-session/index.js';
import { ServiceHealth } from '../health.js';
import { checkAgentId, type CoordinatorMessage } from '../messages.js';
import { TrafficMeter, type RefusedTraffic } from '../traffic-meter.js';
import type { CallInfo, CoordinatorHandler, HealthStatus, Listener, Traffic } from '../transport.js';
import {
  NonceCache,
  PROOF_HEADERS,
  PROOF_WINDOW_MS,
  SESSION_END_STATEMENT,
  downlinkMac,
  newNonce,
  requestProof,
  sameMac,
  sessionEndFields,
  sessionKey,
  uplinkMac,
} from './proof.js';
import { NatsServerSession } from './server-session.js';
import { NATS_HEADERS, isSessionId, type JobSubjects, type RpcMethod } from './subjects.js';
import { asTransportError, endHeaders, settleWithin, statusHeaders, statusOf } from './wire.js';

/** Signed ends of unknown sessions per second, and in a burst (a restarted coordinator's whole fleet at once). */
const SIGNED_ENDS_PER_SECOND = 200;
const SIGNED_END_BURST = 10_000;

interface CachedUpdate {
  bytes: Buffer;
  /** Position of its publication on the listener's clock; sessions opened later did not receive it. */
  publishedAt: number;
  tooLarge?: TransportError;
}

export class NatsListener implements Listener {
  readonly address: string;
  private readonly codecs = getCodecs();
  private readonly sessions = new SessionTable<NatsServerSession>();
  /** Per agent only for agents the coordinator accepted a call from (traffic-meter.ts). */
  private readonly meter = new TrafficMeter();
  /** Nonces of verified requests inside the proof window (replays are refused). */
  private readonly nonces = new NonceCache();
  private forgedMessages = 0;
  /** Budget of signed ends for unknown sessions (publishUnknownSessionEnd). */
  private readonly signedEnds = { tokens: SIGNED_END_BURST, at: performance.now() };
  /** Update messages already published on the broadcast subject, by message object (as gRPC caches serialisation). */
  private readonly published = new WeakMap<CoordinatorMessage, CachedUpdate>();
  private readonly transfers: SnapshotTransfers;
  private readonly subscriptions: Subscription[] = [];
  private clock = 0;
  /** The coordinator's health when it gave one (../health.ts), else this listener's own. */
  private readonly health: ServiceHealth;
  private readonly calls = new CallsInFlight();
  private closing: Promise<void> | undefined;
  private statusWatch: { stop(): void } | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly handler: CoordinatorHandler,
    private readonly subjects: JobSubjects,
    private readonly maxBytes: number,
    private readonly callTimeoutMs: number,
  ) {
    this.address = `nats://${nc.getServer()}/${subjects.root}`;
    this.health = handler.health ?? new ServiceHealth('SERVING');
    this.transfers = new SnapshotTransfers(callTimeoutMs, () => nuid.next());
    const subscribe = (subject: string, onMessage: (msg: Msg) => void): void => {
      this.subscriptions.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            try {
              onMessage(msg);
            } catch {
              // A handler fault must not take the subscription down; the call times out on the agent side.
            }
          },
        }),
      );
    };
    subscribe(subjects.rpcAll, (msg) => this.onRequest(msg));
    subscribe(subjects.upAll, (msg) => this.onUplink(msg));
    subscribe(subjects.health, (msg) => msg.respond(Buffer.from(this.health.status)));
    this.watchConnection();
  }

  /** Messages may be lost while the connection is down, so every session ends and its agent re-joins. */
  private watchConnection(): void {
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.statusWatch = { stop: () => status.stop?.() };
    void (async () => {
      for await (const event of status) {
        if (event.type === 'disconnect') this.endAll(new TransportError('UNAVAILABLE', 'the coordinator lost its NATS connection'));
      }
    })().catch(() => undefined);
    void this.nc.closed().then(() => this.endAll(new TransportError('UNAVAILABLE', 'the coordinator\'s NATS connection closed')));
  }

  private endAll(error: TransportError): void {
    for (const session of this.sessions.all()) session.end(error);
  }

  traffic(): ReadonlyMap<string, Traffic> {
    return this.meter.snapshot();
  }

  refused(): RefusedTraffic {
    return this.meter.refused();
  }

  /** Uplink messages dropped because their MAC, or their sequence number, did not check out (forged or replayed). */
  forged(): number {
    return this.forgedMessages;
  }

  /**
   * Checks a request's proof (proof.ts) against the token the agent must hold; the request's nonce when it
   * holds, undefined when it does not (missing, stale, replayed or wrong: the caller is then refused as one
   * without credentials).
   */
  private verifyRequest(msg: Msg, agentId: string, method: string, secret: string): string | undefined {
    const h = msg.headers;
    const time = h?.get(PROOF_HEADERS.time) ?? '';
    const nonce = h?.get(PROOF_HEADERS.nonce) ?? '';
    const proof = h?.get(PROOF_HEADERS.proof) ?? '';
    const at = Number(time);
    const now = Date.now();
    if (!/^\d{1,15}$/.test(time) || Math.abs(now - at) > PROOF_WINDOW_MS || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) return undefined;
    const fields = {
      root: this.subjects.root,
      agentId,
      method,
      time,
      nonce,
      session: h?.get(NATS_HEADERS.session) ?? '',
      transfer: h?.get(NATS_HEADERS.transfer) ?? '',
      control: h?.get(NATS_HEADERS.control) ?? '',
    };
    if (!sameMac(proof, requestProof(secret, fields, msg.data))) return undefined;
    return this.nonces.remember(`${agentId}\n${nonce}`, at + PROOF_WINDOW_MS, now) ? nonce : undefined;
  }

  setHealth(status: HealthStatus): void {
    this.health.set(status);
  }

  forget(session: NatsServerSession): void {
    this.sessions.delete(session);
  }

  private publish(subject: string, bytes: Uint8Array, headers?: MsgHdrs): TransportError | undefined {
    try {
      this.nc.publish(subject, bytes, headers ? { headers } : undefined);
      return undefined;
    } catch (err) {
      return asTransportError(err, `publish on ${subject}`);
    }
  }

  publishEnd(session: NatsServerSession, error: TransportError | undefined): void {
    this.publish(this.subjects.down(session.info.agentId, session.id), Empty, this.downlinkHeaders(session, Empty, endHeaders(error)));
  }

  /**
   * With a session key, the next sequence number and the downlink MAC (proof.ts) on `headers` (new ones
   * when absent); without one, `headers` as given.
   */
  private downlinkHeaders(session: NatsServerSession, bytes: Uint8Array, headers?: MsgHdrs): MsgHdrs | undefined {
    if (!session.key) return headers;
    const h = headers ?? natsHeaders();
    const seq = ++session.downSeq;
    h.set(PROOF_HEADERS.seq, String(seq));
    h.set(PROOF_HEADERS.mac, downlinkMac(session.key, seq, h.get(NATS_HEADERS.control) ?? '', h.get(NATS_HEADERS.status) ?? '', h.get(NATS_HEADERS.message) ?? '', bytes));
    return h;
  }

  /**
   * Tells the agent of a session this coordinator does not know (it restarted, or ended it) that it is over. The
   * session key is gone, so the end is signed with the log's key instead, bound to the session and the time
   * (proof.ts); an agent with a session key takes no unsigned end. Signing costs CPU and anyone can ask for
   * it by publishing on a made-up session, so signed ends are rate-limited: past the budget nothing is sent, and
   * the agent's liveness window ends the session instead.
   */
  private publishUnknownSessionEnd(agentId: string, sessionId: string): void {
    const error = new TransportError('UNAVAILABLE', `the coordinator has no session ${sessionId} for agent ${agentId} (it may have restarted)`);
    const h = endHeaders(error);
    if (this.handler.secretOf?.(agentId) !== undefined) {
      const now = performance.now();
      const budget = this.signedEnds;
      budget.tokens = Math.min(SIGNED_END_BURST, budget.tokens + ((now - budget.at) / 1000) * SIGNED_ENDS_PER_SECOND);
      budget.at = now;
      if (budget.tokens < 1) return;
      const time = String(Date.now());
      const signature = this.handler.signStatement?.(SESSION_END_STATEMENT, sessionEndFields(this.subjects.root, agentId, sessionId, error.code, h.get(NATS_HEADERS.message), time));
      if (signature === undefined) return; // unsigned log: an agent with a session key would drop it anyway
      budget.tokens -= 1;
      h.set(PROOF_HEADERS.time, time);
      h.set(PROOF_HEADERS.signature, signature);
    }
    this.publish(this.subjects.down(agentId, sessionId), Empty, h);
  }

  sendTo(session: NatsServerSession, message: CoordinatorMessage): boolean {
    const agentId = session.info.agentId;
    if (message.kind === 'update') {
      let cached = this.published.get(message);
      if (!cached) {
        const bytes = this.codecs.coordinatorMessage.encode(message);
        cached = { bytes, publishedAt: ++this.clock };
        if (bytes.length > this.maxBytes) cached.tooLarge = tooLarge(bytes.length, this.maxBytes, 'update');
        else {
          const failed = this.publish(this.subjects.updates, bytes);
          if (failed) cached.tooLarge = failed;
        }
        this.published.set(message, cached);
      } else if (!cached.tooLarge && cached.publishedAt < session.openedAt) {
        // Published before this session existed: its agent never saw it on the broadcast.
        const failed = this.publish(this.subjects.down(agentId, session.id), cached.bytes, this.downlinkHeaders(session, cached.bytes));
        if (failed) {
          session.end(failed);
          return false;
        }
      }
      if (cached.tooLarge) {
        session.end(cached.tooLarge);
        return true;
      }
      // Each agent downloads the broadcast once: count it for every session it is sent to.
      this.meter.down(agentId, cached.bytes.length);
      return true;
    }
    const bytes = this.codecs.coordinatorMessage.encode(message);
    if (bytes.length > this.maxBytes) {
      session.end(tooLarge(bytes.length, this.maxBytes, 'message'));
      return true;
    }
    const failed = this.publish(this.subjects.down(agentId, session.id), bytes, this.downlinkHeaders(session, bytes));
    if (failed) {
      session.end(failed);
      return false;
    }
    this.meter.down(agentId, bytes.length);
    return true;
  }

  private onUplink(msg: Msg): void {
    const parsed = this.subjects.parse(msg.subject, 'up');
    if (!parsed) return;
    const { agentId, last: sessionId } = parsed;
    const session = this.sessions.get(sessionId);
    const isEnd = msg.headers?.get(NATS_HEADERS.control) === 'end';
    if (session && session.info.agentId === agentId && session.key && !this.authenticUplink(session, msg)) {
      // Not from the agent (or a replay): dropped unheard, so a forger can neither submit nor end anything.
      this.forgedMessages++;
      this.meter.refuse(msg.data.length);
      return;
    }
    if (!session || session.info.agentId !== agentId) {
      // A session this coordinator does not know (it restarted, or ended the session): tell the agent, which
      // re-joins. An end message for it needs no answer.
      if (!isEnd && isSessionId(sessionId)) this.publishUnknownSessionEnd(agentId, sessionId);
      return;
    }
    if (isEnd) {
      session.finish(statusOf(msg) ?? undefined);
      return;
    }
    if (msg.data.length > this.maxBytes) {
      session.end(tooLarge(msg.data.length, this.maxBytes, 'message'));
      return;
    }
    this.meter.up(agentId, msg.data.length);
    session.receive(msg.data);
  }

  /** Whether an uplink message carries the session's next sequence number and a valid MAC under its key. */
  private authenticUplink(session: NatsServerSession, msg: Msg): boolean {
    if (msg.data.length > this.maxBytes) return false;
    const h = msg.headers;
    const seqText = h?.get(PROOF_HEADERS.seq) ?? '';
    const seq = Number(seqText);
    if (!/^\d{1,15}$/.test(seqText) || seq <= session.lastSeq) return false;
    const mac = uplinkMac(session.key!, seq, h?.get(NATS_HEADERS.control) ?? '', h?.get(NATS_HEADERS.status) ?? '', msg.data);
    if (!sameMac(h?.get(PROOF_HEADERS.mac) ?? '', mac)) return false;
    session.lastSeq = seq;
    return true;
  }

  private respond(msg: Msg, bytes: Uint8Array, agentId: string, extra?: Record<string, string>): void {
    if (bytes.length > this.maxBytes) {
      this.respondError(msg, tooLarge(bytes.length, this.maxBytes, 'response'));
      return;
    }
    this.meter.down(agentId, bytes.length);
    try {
      msg.respond(bytes, extra ? { headers: statusHeaders(undefined, extra) } : undefined);
    } catch (err) {
      this.respondError(msg, asTransportError(err, 'reply'));
    }
  }

  private respondError(msg: Msg, error: unknown): void {
    try {
      msg.respond(Empty, { headers: statusHeaders(asTransportError(error)) });
    } catch {
      // The agent's connection is gone or the reply subject is refused; its request times out.
    }
  }

  private onRequest(msg: Msg): void {
    if (!msg.reply) return;
    const parsed = this.subjects.parse(msg.subject, 'rpc');
    if (!parsed) {
      this.respondError(msg, new TransportError('INVALID_ARGUMENT', `not a request subject of this job: ${msg.subject}`));
      return;
    }
    if (this.closing) {
      this.respondError(msg, new TransportError('UNAVAILABLE', 'coordinator shutting down'));
      return;
    }
    const method = parsed.last as RpcMethod;
    let info: CallInfo;
    let requestNonce: string | undefined;
    try {
      const agentId = checkAgentId(parsed.agentId, 'subject agent id');
      // The token never travels: the handler gets it only when the request proves it (else '', which it refuses
      // and counts as a failed authentication).
      const secret = this.handler.secretOf?.(agentId);
      requestNonce = secret === undefined ? undefined : this.verifyRequest(msg, agentId, parsed.last, secret);
      info = { agentId, token: requestNonce === undefined ? '' : secret!, peer: `nats:${agentId}` };
    } catch (err) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
      return;
    }
    if (msg.data.length > this.maxBytes) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, tooLarge(msg.data.length, this.maxBytes, 'request'));
      return;
    }
    switch (method) {
      case 'join':
        this.calls.track(async () => {
          try {
            const reply = await meteredCall(this.meter, () => info.agentId, msg.data.length, async () => {
              const request = this.codecs.joinRequest.decode(msg.data);
              // The subject names the agent (and NATS permissions bind it to a user): the request must agree.
              if (request.agentId !== info.agentId) {
                throw new TransportError('PERMISSION_DENIED', `join.agentId: ${request.agentId} joined on the subject of agent ${info.agentId}`);
              }
              return this.codecs.joinAccepted.encode(await this.handler.join({ ...request, token: info.token }, info.peer));
            });
            this.respond(msg, reply, info.agentId);
          } catch (err) {
            this.respondError(msg, err);
          }
        });
        return;
      case 'fetchlog':
        this.calls.track(async () => {
          try {
            const reply = await meteredCall(this.meter, () => info.agentId, msg.data.length, async () =>
              this.codecs.fetchLogResponse.encode(await this.handler.fetchLog(this.codecs.fetchLogRequest.decode(msg.data), info)),
            );
            this.respond(msg, reply, info.agentId);
          } catch (err) {
            this.respondError(msg, err);
          }
        });
        return;
      case 'snapshot':
        this.calls.track(() => this.onSnapshot(msg, info));
        return;
      case 'session':
        this.openSession(msg, info, requestNonce);
        return;
      default:
        this.meter.refuse(msg.data.length);
        this.respondError(msg, new TransportError('UNIMPLEMENTED', `unknown method ${parsed.last}`));
    }
  }

  /** Largest data slice of one snapshot piece: within the size limit and the server's payload limit. */
  private pieceBytes(): number {
    return pieceBytesFor(Math.min(this.maxBytes, this.nc.info?.max_payload ?? 1024 * 1024));
  }

  private async onSnapshot(msg: Msg, info: CallInfo): Promise<void> {
    const transferId = msg.headers?.get(NATS_HEADERS.transfer) ?? '';
    if (transferId !== '' && msg.headers?.get(NATS_HEADERS.control) === 'cancel') {
      try {
        this.transfers.check(transferId, info.agentId);
        this.transfers.end(transferId);
        msg.respond(Empty);
      } catch (err) {
        this.meter.refuse(msg.data.length);
        this.respondError(msg, err);
      }
      return;
    }
    try {
      const { piece, more, transferId: id } = await meteredCall(this.meter, () => info.agentId, msg.data.length, async () =>
        transferId === ''
          ? this.transfers.start(info.agentId, await this.handler.fetchSnapshot(this.codecs.snapshotRequest.decode(msg.data), info), this.pieceBytes())
          : this.transfers.next(transferId, info.agentId),
      );
      this.respond(msg, this.codecs.snapshotChunk.encode(piece), info.agentId, { [NATS_HEADERS.transfer]: id, [NATS_HEADERS.more]: more ? '1' : '0' });
    } catch (err) {
      this.respondError(msg, err);
    }
  }

  private openSession(msg: Msg, info: CallInfo, requestNonce: string | undefined): void {
    const sessionId = msg.headers?.get(NATS_HEADERS.session) ?? '';
    if (!isSessionId(sessionId)) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, new TransportError('INVALID_ARGUMENT', `${NATS_HEADERS.session}: must be 1-64 letters and digits`));
      return;
    }
    const session = new NatsServerSession(this, info, sessionId, this.clock + 1);
    try {
      this.sessions.add(session);
    } catch (err) {
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
      return;
    }
    this.clock++;
    const extra: Record<string, string> = {};
    if (requestNonce !== undefined) {
      // Proven with the token: from now on only messages under the session key count as the agent's, and the
      // agent takes only messages under it as the coordinator's. Keyed before the handler sees the session,
      // since it may send on it at once (those messages reach the agent before this reply, which it holds back).
      const sessionNonce = newNonce();
      session.key = sessionKey(info.token, this.subjects.root, info.agentId, sessionId, requestNonce, sessionNonce);
      extra[PROOF_HEADERS.sessionNonce] = sessionNonce;
    }
    try {
      this.handler.session(session);
    } catch (err) {
      session.refuse();
      this.meter.refuse(msg.data.length);
      this.respondError(msg, err);
      return;
    }
    accepted(this.meter, info.agentId, msg.data.length);
    try {
      msg.respond(Empty, { headers: statusHeaders(undefined, extra) });
    } catch (err) {
      session.end(asTransportError(err, 'session open reply'));
    }
  }

  close(graceMs = 2000): Promise<void> {
    this.closing ??= (async () => {
      this.health.set('NOT_SERVING');
      this.endAll(new TransportError('UNAVAILABLE', 'coordinator shutting down'));
      for (const sub of this.subscriptions) sub.unsubscribe();
      this.transfers.endAll();
      await this.calls.settle(graceMs);
      this.statusWatch?.stop();
      if (this.nc.isClosed()) return;
      // The end messages go out before the connection (if it is ours) closes; a server that is gone (the
      // connection reconnecting) must not hold the shutdown up.
      await settleWithin(this.nc.flush(), graceMs);
      if (this.owned) await this.nc.close().catch(() => undefined);
    })();
    return this.closing;
  }
}
