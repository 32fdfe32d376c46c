/**
 * Proof of an agent's token on NATS, where every message crosses a shared server: whoever may subscribe to a
 * subject reads it, and whoever may publish to it can write there. So the token itself never travels. Each
 * request (Join, FetchLog, a snapshot piece, a Session open) carries an HMAC-SHA256 keyed by the token over the
 * job, the agent, the method, a timestamp, a fresh nonce, the control headers and a digest of the body; the
 * coordinator recomputes it with the token it expects for that agent. A Session open also fixes a per-session
 * key, HMAC(token, job, agent, session id, the request's nonce, a nonce the coordinator picks), and every
 * message of the session, either way, carries a sequence number and an HMAC under that key. Forging a request, a
 * result, a task or a session end therefore needs the token; a captured request is refused when replayed (nonces
 * are remembered for the timestamp window), and a captured session message is refused when replayed (its
 * sequence number is spent).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** NATS headers of the proofs. */
export const PROOF_HEADERS = {
  /** Milliseconds since the epoch when the agent made the request. */
  time: 'Mezo-Time',
  /** A fresh random value per request. */
  nonce: 'Mezo-Nonce',
  /** base64url HMAC-SHA256 of the request under the agent's token. */
  proof: 'Mezo-Proof',
  /** On a Session open's reply: the coordinator's share of the session key. */
  sessionNonce: 'Mezo-Session-Nonce',
  /** On a session message, either way: its sequence number in the session (1, 2, …) and its HMAC under the session key. */
  seq: 'Mezo-Seq',
  mac: 'Mezo-Mac',
  /** On a restarted coordinator's end of a session it does not know: its Ed25519 signature (hex) with the log's key. */
  signature: 'Mezo-Signature',
} as const;

/** How far a request's timestamp may be from the coordinator's clock (devices' clocks drift). */
export const PROOF_WINDOW_MS = 5 * 60_000;

const b64 = (bytes: Buffer): string => bytes.toString('base64url');

/** What a request's proof covers, besides its body. */
export interface RequestFields {
  /** The job's subject root (binds the proof to one job and subject tree). */
  root: string;
  agentId: string;
  method: string;
  time: string;
  nonce: string;
  /** The session, transfer and control headers, '' when absent. */
  session: string;
  transfer: string;
  control: string;
}

export function requestProof(token: string, fields: RequestFields, body: Uint8Array): string {
  const digest = createHash('sha256').update(body).digest('hex');
  const text = ['mezo-nats-request-v1', fields.root, fields.agentId, fields.method, fields.time, fields.nonce, fields.session, fields.transfer, fields.control, digest].join('\n');
  return b64(createHmac('sha256', token).update(text).digest());
}

/** Compares two base64url MACs in constant time (for equal lengths; a wrong length is simply false). */
export function sameMac(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function newNonce(): string {
  return b64(randomBytes(16));
}

/** The per-session key both ends derive once the coordinator accepted a Session open. */
export function sessionKey(token: string, root: string, agentId: string, sessionId: string, requestNonce: string, sessionNonce: string): Buffer {
  return createHmac('sha256', token).update(['mezo-nats-session-v1', root, agentId, sessionId, requestNonce, sessionNonce].join('\n')).digest();
}

/** The MAC of one uplink message: its sequence number, its control headers and its body. */
export function uplinkMac(key: Buffer, seq: number, control: string, status: string, body: Uint8Array): string {
  return b64(createHmac('sha256', key).update(`mezo-nats-uplink-v1\n${seq}\n${control}\n${status}\n`).update(body).digest());
}

/**
 * The MAC of one downlink message (a task, a ping, an update sent on the session, the coordinator's end), under
 * the same session key as the uplink but its own domain, so an agent's message never passes as the
 * coordinator's. The status message is covered too: it is what the agent reports when the session ends.
 */
export function downlinkMac(key: Buffer, seq: number, control: string, status: string, message: string, body: Uint8Array): string {
  return b64(createHmac('sha256', key).update(`mezo-nats-downlink-v1\n${seq}\n${control}\n${status}\n${message}\n`).update(body).digest());
}

/**
 * A restarted coordinator has lost the session keys, so its "no such session" end cannot carry a MAC; it signs
 * it with the update log's key (log-signature.ts, a statement of this kind) over these fields instead. The
 * session id binds it to one session (ids are fresh per session), the time makes it stale after PROOF_WINDOW_MS.
 */
export const SESSION_END_STATEMENT = 'nats-session-end';

export function sessionEndFields(root: string, agentId: string, sessionId: string, status: string, message: string, time: string): string[] {
  return [root, agentId, sessionId, status, message, time];
}

/**
 * Nonces of verified requests, kept while their timestamps are inside the window, so a captured request cannot
 * be played again. Only requests whose proof checked out are remembered (strangers cost nothing), and the table
 * holds at most `max` entries, oldest out first.
 */
export class NonceCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly max = 100_000) {}

  /** Records `nonce` (valid until `expiresAt`); false when it was seen already. */
  remember(nonce: string, expiresAt: number, now: number): boolean {
    if (this.seen.has(nonce)) return false;
    if (this.seen.size >= this.max) {
      for (const [key, expiry] of this.seen) if (expiry < now) this.seen.delete(key);
      while (this.seen.size >= this.max) this.seen.delete(this.seen.keys().next().value!);
    }
    this.seen.set(nonce, expiresAt);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}
