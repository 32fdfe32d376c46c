import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, peerAddress } from '../../../coordinator/auth-failure-limiter.js';

describe('AuthFailureLimiter', () => {
  it('reduces transport peers to addresses (IPv6 to its /64)', () => {
    // grpc-js reports the remote address and port as the socket gives them.
    expect(peerAddress('127.0.0.1:51234')).toBe('ip:127.0.0.1');
    expect(peerAddress('ipv4:10.0.0.7:51234')).toBe('ip:10.0.0.7');
    expect(peerAddress('::ffff:10.0.0.7:51234')).toBe('ip:10.0.0.7');
    expect(peerAddress('2001:db8:0:1:aaaa::5:443')).toBe('ip:2001:db8:0:1::/64');
    expect(peerAddress('[2001:db8:0:1:bbbb::9]:80')).toBe('ip:2001:db8:0:1::/64');
    expect(peerAddress('::1:80')).toBe('ip:0:0:0:0::/64');
    expect(peerAddress('nats:dev-3')).toBe('nats:dev-3');
  });

  it('refuses a peer once its failures spend the burst, and only that peer', () => {
    const limiter = new AuthFailureLimiter({ perSecond: 0.001, burst: 3, maxPeers: 10 });
    for (let i = 0; i < 3; i++) {
      expect(limiter.allows('ipv4:1.2.3.4:1000')).toBe(true);
      limiter.failed(`ipv4:1.2.3.4:${1000 + i}`);
    }
    expect(limiter.allows('ipv4:1.2.3.4:2000')).toBe(false);
    expect(limiter.allows('ipv4:5.6.7.8:2000')).toBe(true);
    expect(limiter.refused).toBe(1);
  });

  it('tracks at most maxPeers addresses, evicting the least recently failed', () => {
    const limiter = new AuthFailureLimiter({ perSecond: 0.001, burst: 1, maxPeers: 4 });
    for (let i = 0; i < 1000; i++) limiter.failed(`ipv4:10.0.${i >> 8}.${i & 255}:1`);
    expect(limiter.size).toBe(4);
    expect(limiter.allows('ipv4:10.0.3.231:9')).toBe(false); // the last one (999) is still tracked
    expect(limiter.allows('ipv4:10.0.0.0:9')).toBe(true); // the first was evicted
  });

  it('does nothing with perSecond 0', () => {
    const limiter = new AuthFailureLimiter({ perSecond: 0, burst: 1, maxPeers: 4 });
    for (let i = 0; i < 10; i++) limiter.failed('ipv4:1.1.1.1:1');
    expect(limiter.allows('ipv4:1.1.1.1:1')).toBe(true);
    expect(limiter.size).toBe(0);
  });
});
