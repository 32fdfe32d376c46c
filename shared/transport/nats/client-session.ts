/**
 * One Session on the agent's side of NATS: the framed-session core's client end
 * (../framed-session/client-session.ts: the open's states, uplink held until the open is answered, downlink
 * decoded in order, the liveness clock, the end reported once) with what NATS adds. The session is opened by a
 * request on `rpc.<agent>.session` once the hub (client-hub.ts) listens on its downlink; with a token, every
 * message either way is under the session key (proof.ts), and a downlink message that fails its MAC or
 * sequence number — or, for an end, the log key's signature — is dropped and counted.
 */
import { Empty, headers as natsHeaders, nuid, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { LogVerifier } from '../../log/log-signature.js';
import type { TransportError } from '../errors.js';
import { FramedClientSession } from '../framed-session/index.js';
import type { CoordinatorMessage } from '../messages.js';
import type { StreamListener } from '../transport.js';
import type { ClientHub } from './client-hub.js';
import type { NatsCoordinatorClient } from './client.js';
import { PROOF_HEADERS, PROOF_WINDOW_MS, SESSION_END_STATEMENT, downlinkMac, sameMac, sessionEndFields, sessionKey, uplinkMac } from './proof.js';
import { NATS_HEADERS } from './subjects.js';
import { asTransportError, endHeaders, statusOf } from './wire.js';

/** Downlink messages an agent holds while its session open is unanswered (their MACs need the reply's nonce). */
const MAX_EARLY_DOWNLINK = 1024;

export class NatsClientSession extends FramedClientSession {
  readonly id = nuid.next();
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
    listener: StreamListener<CoordinatorMessage>,
    livenessMs: number,
  ) {
    super(listener, client.maxBytes, livenessMs);
  }

  /** Subscribes (through the hub) first, then asks the coordinator to open the session. */
  start(nc: NatsConnection, hub: ClientHub, timeoutMs: number): void {
    if (this.closed) return;
    this.nc = nc;
    this.hub = hub;
    hub.attach(this);
    this.heard();
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
        // Uplink sent before the coordinator accepted goes out now, in order.
        if (!this.opened()) return;
        // So does the downlink that came before this reply, now that its MACs can be checked.
        const early = this.early;
        this.early = [];
        for (const down of early) this.onDown(down);
      },
      // No answer in time: the coordinator may still have opened it, so say it is over.
      (err: unknown) => this.abort(asTransportError(err, 'session open')),
    );
  }

  protected sendFrame(bytes: Uint8Array): boolean {
    return this.publish(bytes);
  }

  protected sendEndFrame(error: TransportError): void {
    if (!this.nc || this.nc.isClosed()) return;
    // With a token the end must carry the session key's MAC, known once the open is answered: it waits for that.
    if (this.state === 'opening' && this.client.token !== '') this.pendingEnd = error;
    // Otherwise sent even while opening: it follows the open request, so the coordinator sees it after the open.
    else this.publish(Empty, endHeaders(error));
  }

  protected forgotten(): void {
    this.hub?.detach(this);
    this.client.forget(this);
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

  /**
   * A message on this session's downlink. With a session key only the coordinator's count: the next sequence
   * number and a valid MAC, or (an end only) the log key's signature of a restarted coordinator's end for this
   * session. Anything else — forged, replayed, garbled — is dropped and counted, and does not even count as a
   * sign of life.
   */
  onDown(msg: Msg): void {
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
    this.heard();
    this.receive(msg.data);
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
}
