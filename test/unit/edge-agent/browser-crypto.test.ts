/**
 * The browser agent's stand-in for node:crypto (edge-agent/browser/node-crypto.ts) gives Node's own SHA-256 and
 * HMAC-SHA-256 bytes for every length around the block boundaries, fed whole or in pieces, hex or raw, and long
 * keys; the functions a page cannot have throw, naming themselves.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHash, createHmac, createPrivateKey, randomBytes, timingSafeEqual } from '../../../edge-agent/browser/node-crypto.js';

const LENGTHS = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65_537];

describe('browser node:crypto stand-in', () => {
  it('SHA-256 equals node:crypto for lengths around the block boundaries, whole and in pieces', () => {
    for (const n of LENGTHS) {
      const data = nodeCrypto.randomBytes(n);
      const expected = nodeCrypto.createHash('sha256').update(data).digest('hex');
      expect(createHash('sha256').update(data).digest('hex'), `length ${n}`).toBe(expected);
      const cut = Math.floor(n / 3);
      expect(createHash('sha256').update(data.subarray(0, cut)).update(data.subarray(cut)).digest('hex'), `length ${n} in pieces`).toBe(expected);
    }
    expect(createHash('sha256').update('héllo', 'utf8').digest('hex')).toBe(nodeCrypto.createHash('sha256').update('héllo', 'utf8').digest('hex'));
    expect(Buffer.from(createHash('sha256').update('x').digest())).toEqual(nodeCrypto.createHash('sha256').update('x').digest());
  });

  it('HMAC-SHA-256 equals node:crypto for short, block-sized and long keys', () => {
    for (const keyLength of [0, 16, 64, 65, 200]) {
      for (const n of [0, 5, 64, 300]) {
        const key = nodeCrypto.randomBytes(keyLength);
        const data = nodeCrypto.randomBytes(n);
        const expected = nodeCrypto.createHmac('sha256', key).update('head\n').update(data).digest('base64');
        expect(createHmac('sha256', key).update('head\n').update(data).digest('base64'), `key ${keyLength}, data ${n}`).toBe(expected);
      }
    }
    expect(createHmac('sha256', 'token').update('a').digest('hex')).toBe(nodeCrypto.createHmac('sha256', 'token').update('a').digest('hex'));
  });

  it('gives random bytes of the length asked, compares in constant time, and refuses the rest by name', () => {
    expect(randomBytes(70_000).length).toBe(70_000);
    expect(randomBytes(32).equals(randomBytes(32))).toBe(false);
    expect(timingSafeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(timingSafeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(() => timingSafeEqual(Buffer.from('a'), Buffer.from('ab'))).toThrow(RangeError);
    expect(() => createHash('md5')).toThrow(/only sha256/);
    expect(() => createPrivateKey()).toThrow(/createPrivateKey is not available in the browser agent/);
  });
});
