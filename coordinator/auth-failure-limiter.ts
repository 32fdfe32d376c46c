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
 * The address part of a transport's peer string: gRPC's "ipv4:10.0.0.7:51234" → "ipv4:10.0.0.7", and an IPv6
 * peer to its /64 (one host holds a whole /64). Other peers (NATS, which does not reveal the sender) are kept
 * as the transport names them.
 */
export function peerAddress(peer: string): string {
  const v4 = /^ipv4:(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(peer);
  if (v4) return `ipv4:${v4[1]}`;
  const v6 = /^ipv6:\[([0-9a-fA-F:.]+)\]:\d+$/.exec(peer);
  if (v6) {
    const address = v6[1]!;
    const [head = '', tail = ''] = address.split('::');
    const front = head === '' ? [] : head.split(':');
    const back = tail === '' ? [] : tail.split(':');
    const groups = address.includes('::') ? [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back] : front;
    return `ipv6:${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
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
