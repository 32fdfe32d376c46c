import { isIPv4, isIPv6 } from 'node:net';

/**
 * Failed authentication, rate-limited per peer address with bounded memory. Each peer has a token bucket that
 * only failures drain; while it is empty every call from that peer is refused before its credentials are
 * looked at (so guessing tokens runs at the bucket's rate, whatever the caller claims to be). Buckets live in a
 * map of at most `maxPeers` entries, least recently failed first out, so a caller with many addresses costs a
 * fixed amount of memory; a full bucket is dropped as soon as it is full again.
 */

export interface AuthFailureLimit {
  /** Failures a peer may make per second, on average (0: no limit). */
  perSecond: number;
  /** Failures a peer may make in a row. */
  burst: number;
  /** Peers tracked at once. */
  maxPeers: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The address part of a transport's peer string, without the port: gRPC's "10.0.0.7:51234" (or
 * "ipv4:10.0.0.7:51234") → "ip:10.0.0.7", an IPv4-mapped IPv6 address to its IPv4 form, and an IPv6 address to
 * its /64 (one host holds a whole /64). Other peers (NATS, which does not reveal the sender) are kept as the
 * transport names them.
 */
export function peerAddress(peer: string): string {
  const withoutScheme = peer.replace(/^ipv[46]:/, '');
  const port = /^(.*):\d+$/.exec(withoutScheme);
  const host = port ? port[1]!.replace(/^\[(.*)\]$/, '$1') : withoutScheme;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (isIPv4(host) || mapped) return `ip:${mapped ? mapped[1] : host}`;
  if (isIPv6(host)) {
    const [head = '', tail = ''] = host.split('::');
    const front = head === '' ? [] : head.split(':');
    const back = tail === '' ? [] : tail.split(':');
    const groups = host.includes('::') ? [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back] : front;
    return `ip:${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
  }
  return peer;
}

export class AuthFailureLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private refusedTotal = 0;

  constructor(private readonly limit: AuthFailureLimit) {}

  private refill(bucket: Bucket, now: number): void {
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
  }

  /** Whether a call from `peer` may be authenticated now (false: refuse it unheard). */
  allows(peer: string): boolean {
    if (this.limit.perSecond === 0) return true;
    const key = peerAddress(peer);
    const bucket = this.buckets.get(key);
    if (!bucket) return true;
    const now = performance.now();
    this.refill(bucket, now);
    if (bucket.tokens >= 1) return true;
    this.refusedTotal++;
    return false;
  }

  /** A call from `peer` failed authentication. */
  failed(peer: string): void {
    if (this.limit.perSecond === 0) return;
    const key = peerAddress(peer);
    const now = performance.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      this.refill(bucket, now);
    } else {
      bucket = { tokens: this.limit.burst, at: now };
      while (this.buckets.size >= this.limit.maxPeers) this.buckets.delete(this.buckets.keys().next().value!);
    }
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    // Re-inserted: the map's order is the order of the last failure, oldest first.
    this.buckets.set(key, bucket);
  }

  /** A call from `peer` authenticated: a bucket that has filled up again is forgotten. */
  succeeded(peer: string): void {
    const key = peerAddress(peer);
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    this.refill(bucket, performance.now());
    if (bucket.tokens >= this.limit.burst) this.buckets.delete(key);
  }

  /** Peers tracked now (at most maxPeers). */
  get size(): number {
    return this.buckets.size;
  }

  /** Calls refused unheard because their peer was over its failure budget. */
  get refused(): number {
    return this.refusedTotal;
  }
}
