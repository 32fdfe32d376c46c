/**
 * One Session on the agent's side of NATS: opened by a request on `rpc.<agent>.session` once the hub
 * (client-hub.ts) listens on its downlink; uplink queued until the open is answered; with a token, every
 * message either way under the session key (proof.ts), and a downlink message that fails its MAC or sequence
 * number — or, for an end, the log key's signature — dropped and counted.
 */
import { Empty, headers as natsHeaders, nuid, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { LogVerifier } from '../../log/log-signature.js';
import { getCodecs } from '../codecs.js';
import { TransportError } from '../errors.js';
import type { AgentMessage, CoordinatorMessage } from '../messages.js';
import type { ClientSession, StreamListener } from '../transport.js';
import type { ClientHub } from './client-hub.js';
import type { NatsCoordinatorClient } from './client.js';
import { PROOF_HEADERS, PROOF_WINDOW_MS, SESSION_END_STATEMENT, downlinkMac, sameMac, sessionEndFields, sessionKey, uplinkMac } from './proof.js';
import { NATS_HEADERS } from './subjects.js';
import { asTransportError, endHeaders, oversize, statusOf } from './wire.js';

/** Downlink messages an agent holds while its session open is unanswered (their MACs need the reply's nonce). */
const MAX_EARLY_DOWNLINK = 1024;

export class NatsClientSession implements ClientSession {
  readonly id = nuid.next();
  lastHeard = Date.now();
  private state: 'opening' | 'open' | 'closed' = 'opening';
  private queued: Buffer[] = [];
  private hub: ClientHub | undefined;
  private nc: NatsConnection | undefined;
  /** With a token: the session key (proof.ts) the uplink is authenticated with, and the last sequence used. */
  private key: Buffer | undefined;
  private seq = 0;
  /** Ended while the open was unanswered, with a token: the end goes out under the session key once it is known. */
  private pendingEnd: TransportError | undefined;
  /** The sequence number of the last downlink message taken (each must be above it). */
  private downSeq = 0;
  /** Downlink messages that came while the open was unanswered, with a token: checked once the key is known. */
  private early: Msg[] = [];

  constructor(
    private readonly client: NatsCoordinatorClient,
    readonly agentId: string,
    private readonly listener: StreamListener<CoordinatorMessage>,
    readonly livenessMs: number,
  ) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Subscribes (through the hub) first, then asks the coordinator to open the session. */
  start(nc: NatsConnection, hub: ClientHub, timeoutMs: number): void {
    if (this.closed) return;
    this.nc = nc;
    this.hub = hub;
    hub.attach(this);
    this.lastHeard = Date.now();
    const { headers: h, nonce } = this.client.proofHeaders('session', Empty, { [NATS_HEADERS.session]: this.id });
    nc.request(hub.subjects.rpc(this.agentId, 'session'), Empty, { timeout: timeoutMs, headers: h }).then(
      (reply) => {
        const refused = statusOf(reply);
        const sessionNonce = reply.headers?.get(PROOF_HEADERS.sessionNonce) ?? '';
        // The coordinator checked the token's proof and keyed the session: so does this end.
        if (!refused && nonce !== undefined && sessionNonce !== '') this.key = sessionKey(this.client.token, hub.subjects.root, this.agentId, this.id, nonce, sessionNonce);
        if (this.closed) {
          if (!refused && this.pendingEnd && !nc.isClosed()) this.publish(Empty, endHeaders(this.pendingEnd));
          return;
        }
        if (refused) {
          this.closeWith(refused);
          return;
        }
        this.state = 'open';
        this.lastHeard = Date.now();
        // Uplink sent before the coordinator accepted goes out now, in order.
        const waiting = this.queued;
        this.queued = [];
        for (const bytes of waiting) if (!this.publish(bytes)) return;
        // So does the downlink that came before this reply, now that its MACs can be checked.
        const early = this.early;
        this.early = [];
        for (const down of early) this.onDown(down, hub.maxBytes);
      },
      // No answer in time: the coordinator may still have opened it, so say it is over.
      (err: unknown) => this.abort(asTransportError(err, 'session open')),
    );
  }

  private publish(bytes: Uint8Array, headers?: MsgHdrs): boolean {
    if (this.key) {
      headers ??= natsHeaders();
      const seq = ++this.seq;
      headers.set(PROOF_HEADERS.seq, String(seq));
      headers.set(PROOF_HEADERS.mac, uplinkMac(this.key, seq, headers.get(NATS_HEADERS.control) ?? '', headers.get(NATS_HEADERS.status) ?? '', bytes));
    }
    try {
      this.nc!.publish(this.hub!.subjects.up(this.agentId, this.id), bytes, headers ? { headers } : undefined);
      return true;
    } catch (err) {
      if (!headers) this.closeWith(asTransportError(err, 'session send'));
      return false;
    }
  }

  send(message: AgentMessage): boolean {
    if (this.closed) return false;
    const bytes = getCodecs().agentMessage.encode(message);
    const limit = this.client.maxBytes;
    if (bytes.length > limit) {
      this.abort(oversize(bytes.length, limit, 'message'));
      return true;
    }
    if (this.state === 'opening') this.queued.push(bytes);
    else this.publish(bytes);
    return true;
  }

  end(): void {
    this.abort(new TransportError('CANCELLED', 'agent ended the session'));
  }

  /** Ends the session here and tells the coordinator why. */
  abort(error: TransportError): void {
    if (this.closed) return;
    if (this.nc && !this.nc.isClosed()) {
      // With a token the end must carry the session key's MAC, known once the open is answered: it waits for that.
      if (this.state === 'opening' && this.client.token !== '') this.pendingEnd = error;
      // Otherwise sent even while opening: it follows the open request, so the coordinator sees it after the open.
      else this.publish(Empty, endHeaders(error));
    }
    this.closeWith(error);
  }

  deliver(message: CoordinatorMessage): void {
    if (!this.closed) this.listener.message(message);
  }

  /**
   * A message on this session's downlink. With a session key only the coordinator's count: the next sequence
   * number and a valid MAC, or (an end only) the log key's signature of a restarted coordinator's end for this
   * session. Anything else — forged, replayed, garbled — is dropped and counted, and does not even count as a
   * sign of life.
   */
  onDown(msg: Msg, maxBytes: number): void {
    if (this.closed) return;
    if (this.state === 'opening' && this.client.token !== '') {
      if (this.early.length < MAX_EARLY_DOWNLINK) this.early.push(msg);
      else this.client.countForged();
      return;
    }
    const isEnd = msg.headers?.get(NATS_HEADERS.control) === 'end';
    if (this.key && !this.authenticDown(msg) && !(isEnd && this.signedEnd(msg))) {
      this.client.countForged();
      return;
    }
    if (isEnd) {
      this.closeWith(statusOf(msg));
      return;
    }
    this.lastHeard = Date.now();
    if (msg.data.length > maxBytes) {
      this.abort(oversize(msg.data.length, maxBytes, 'message'));
      return;
    }
    let message: CoordinatorMessage;
    try {
      message = getCodecs().coordinatorMessage.decode(msg.data);
    } catch (err) {
      this.invalid(asTransportError(err));
      return;
    }
    this.deliver(message);
  }

  private authenticDown(msg: Msg): boolean {
    const h = msg.headers;
    const seqText = h?.get(PROOF_HEADERS.seq) ?? '';
    const seq = Number(seqText);
    if (!/^\d{1,15}$/.test(seqText) || seq <= this.downSeq) return false;
    const mac = downlinkMac(this.key!, seq, h?.get(NATS_HEADERS.control) ?? '', h?.get(NATS_HEADERS.status) ?? '', h?.get(NATS_HEADERS.message) ?? '', msg.data);
    if (!sameMac(h?.get(PROOF_HEADERS.mac) ?? '', mac)) return false;
    this.downSeq = seq;
    return true;
  }

  /** Whether an end is a coordinator's signed "no such session" for this very session, made within the window. */
  private signedEnd(msg: Msg): boolean {
    const publicKey = this.client.logPublicKey;
    const h = msg.headers;
    const time = h?.get(PROOF_HEADERS.time) ?? '';
    if (publicKey === undefined || !/^\d{1,15}$/.test(time) || Math.abs(Date.now() - Number(time)) > PROOF_WINDOW_MS || msg.data.length > 0) return false;
    const fields = sessionEndFields(this.hub!.subjects.root, this.agentId, this.id, h?.get(NATS_HEADERS.status) ?? '', h?.get(NATS_HEADERS.message) ?? '', time);
    return LogVerifier.for(publicKey).verifyStatement(SESSION_END_STATEMENT, fields, h?.get(PROOF_HEADERS.signature) ?? '');
  }

  invalid(error: TransportError): void {
    if (!this.closed) this.listener.invalid(error);
  }

  /** Reported on a later turn of the event loop, as gRPC reports a stream's end. */
  closeWith(error: TransportError | undefined): void {
    if (this.closed) return;
    this.state = 'closed';
    this.queued = [];
    this.hub?.detach(this);
    this.client.forget(this);
    setImmediate(() => this.listener.closed(error));
  }
}
