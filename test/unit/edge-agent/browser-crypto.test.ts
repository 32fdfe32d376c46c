/**
 * The browser agent's stand-in for node:crypto (edge-agent/browser/node-crypto.ts) gives Node's own SHA-256 and
 * HMAC-SHA-256 bytes for every length around the block boundaries, fed whole or in pieces, hex or raw, and long
 * keys; verifies Node's Ed25519 signatures; the functions a page cannot have throw, naming themselves.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, timingSafeEqual, verify } from '../../../edge-agent/browser/node-crypto.js';

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

  it('verifies Node-made Ed25519 signatures from a JWK public key, and refuses altered ones', () => {
    const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const message = Buffer.from('mezo-log-v1\nsome hash');
    const signature = nodeCrypto.sign(null, message, privateKey);
    expect(verify(null, message, key, signature)).toBe(true);
    expect(verify(null, Buffer.from('mezo-log-v1\nother hash'), key, signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[5]! ^= 1;
    expect(verify(null, message, key, flipped)).toBe(false);
    expect(verify(null, message, key, signature.subarray(1))).toBe(false);
    expect(() => createPublicKey({ key: { kty: 'RSA' }, format: 'jwk' })).toThrow(/only an Ed25519 JWK/);
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
