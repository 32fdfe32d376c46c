/**
 * The browser bundle's stand-in for `node:crypto` (scripts/build-browser-agent.mjs maps the import here): the
 * synchronous SHA-256 and HMAC-SHA-256 the agent's hash chain, weights hashes and NATS session MACs use, random
 * bytes from the Web Crypto API, and a constant-time compare. WebCrypto's own digests are asynchronous, and the
 * agent's callers are not, so SHA-256 is computed here (FIPS 180-4); Ed25519 verification of the coordinator's
 * log signatures uses tweetnacl. Anything else the shared modules import (private keys, signing, ciphers: the
 * coordinator's side and secure aggregation) throws when called.
 */
import { Buffer } from 'buffer';
import nacl from 'tweetnacl';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

type Input = string | ArrayBufferView | ArrayBuffer;

function bytesOf(data: Input, encoding?: string): Uint8Array {
  if (typeof data === 'string') {
    if (encoding !== undefined && encoding !== 'utf8' && encoding !== 'utf-8') return Buffer.from(data, encoding as BufferEncoding);
    return new TextEncoder().encode(data);
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Incremental SHA-256: 64-byte blocks compressed as they fill. */
class Sha256 {
  private readonly h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  private readonly block = new Uint8Array(64);
  private readonly w = new Uint32Array(64);
  private filled = 0;
  private length = 0;

  update(bytes: Uint8Array): void {
    this.length += bytes.length;
    let i = 0;
    while (i < bytes.length) {
      const n = Math.min(64 - this.filled, bytes.length - i);
      this.block.set(bytes.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === 64) {
        this.compress();
        this.filled = 0;
      }
    }
  }

  digest(): Uint8Array {
    const bits = this.length * 8;
    this.block[this.filled++] = 0x80;
    if (this.filled > 56) {
      this.block.fill(0, this.filled);
      this.compress();
      this.filled = 0;
    }
    this.block.fill(0, this.filled);
    const view = new DataView(this.block.buffer);
    view.setUint32(56, Math.floor(bits / 2 ** 32));
    view.setUint32(60, bits >>> 0);
    this.compress();
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setUint32(4 * i, this.h[i]!);
    return out;
  }

  private compress(): void {
    const w = this.w;
    const b = this.block;
    for (let t = 0; t < 16; t++) w[t] = (b[4 * t]! << 24) | (b[4 * t + 1]! << 16) | (b[4 * t + 2]! << 8) | b[4 * t + 3]!;
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) >>> 0;
    }
    let [a, bb, c, d, e, f, g, h] = this.h as unknown as number[] as [number, number, number, number, number, number, number, number];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[t]! + w[t]!) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & bb) ^ (a & c) ^ (bb & c);
      const t2 = (S0 + maj) >>> 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) >>> 0;
    }
    const hs = this.h;
    hs[0] = (hs[0]! + a) >>> 0;
    hs[1] = (hs[1]! + bb) >>> 0;
    hs[2] = (hs[2]! + c) >>> 0;
    hs[3] = (hs[3]! + d) >>> 0;
    hs[4] = (hs[4]! + e) >>> 0;
    hs[5] = (hs[5]! + f) >>> 0;
    hs[6] = (hs[6]! + g) >>> 0;
    hs[7] = (hs[7]! + h) >>> 0;
  }
}

function encode(bytes: Uint8Array, encoding?: string): Buffer | string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return encoding === undefined ? buffer : buffer.toString(encoding as BufferEncoding);
}

function checkAlgorithm(algorithm: string, what: string): void {
  if (algorithm.toLowerCase() !== 'sha256') throw new Error(`${what}('${algorithm}'): only sha256 is available in the browser agent`);
}

export interface Hash {
  update(data: Input, encoding?: string): Hash;
  digest(): Buffer;
  digest(encoding: string): string;
}

export function createHash(algorithm: string): Hash {
  checkAlgorithm(algorithm, 'createHash');
  const sha = new Sha256();
  const hash = {
    update(data: Input, encoding?: string) {
      sha.update(bytesOf(data, encoding));
      return hash;
    },
    digest: ((encoding?: string) => encode(sha.digest(), encoding)) as Hash['digest'],
  };
  return hash;
}

/** HMAC (RFC 2104) over SHA-256. */
export function createHmac(algorithm: string, key: Input): Hash {
  checkAlgorithm(algorithm, 'createHmac');
  let k = bytesOf(key);
  if (k.length > 64) {
    const long = new Sha256();
    long.update(k);
    k = long.digest();
  }
  const pad = (value: number): Uint8Array => {
    const out = new Uint8Array(64).fill(value);
    for (let i = 0; i < k.length; i++) out[i]! ^= k[i]!;
    return out;
  };
  const inner = new Sha256();
  inner.update(pad(0x36));
  const hash = {
    update(data: Input, encoding?: string) {
      inner.update(bytesOf(data, encoding));
      return hash;
    },
    digest: ((encoding?: string) => {
      const outer = new Sha256();
      outer.update(pad(0x5c));
      outer.update(inner.digest());
      return encode(outer.digest(), encoding);
    }) as Hash['digest'],
  };
  return hash;
}

export function randomBytes(size: number): Buffer {
  const out = Buffer.alloc(size);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}

export function randomUUID(): string {
  return crypto.randomUUID();
}

export function timingSafeEqual(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = bytesOf(a);
  const y = bytesOf(b);
  if (x.length !== y.length) throw new RangeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

function unavailable(name: string): () => never {
  return () => {
    throw new Error(`crypto.${name} is not available in the browser agent (signed logs and secure aggregation need a Node.js agent)`);
  };
}

/** An Ed25519 public key as createPublicKey returns it here: its 32 raw bytes. */
interface Ed25519PublicKey {
  readonly type: 'public';
  readonly asymmetricKeyType: 'ed25519';
  readonly raw: Uint8Array;
}

/**
 * The one key form the shared modules build in an agent: an Ed25519 public key as a JWK (the coordinator's log
 * key, shared/log/log-signature.ts LogVerifier).
 */
export function createPublicKey(input: { key: { kty?: string; crv?: string; x?: string }; format?: string }): Ed25519PublicKey {
  const jwk = input?.key;
  if (input?.format !== 'jwk' || jwk?.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new Error('createPublicKey: only an Ed25519 JWK public key is available in the browser agent');
  }
  // base64url in base64's alphabet (the `buffer` package does not read base64url).
  const raw = new Uint8Array(Buffer.from(jwk.x.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
  if (raw.length !== nacl.sign.publicKeyLength) throw new Error(`createPublicKey: an Ed25519 key has 32 bytes, got ${raw.length}`);
  return { type: 'public', asymmetricKeyType: 'ed25519', raw };
}

/** Ed25519 verification (algorithm null, as for Node's Ed25519 keys), with tweetnacl. */
export function verify(algorithm: null | undefined, data: ArrayBufferView, key: Ed25519PublicKey, signature: ArrayBufferView): boolean {
  if (algorithm !== null && algorithm !== undefined) throw new Error('verify: Ed25519 takes no digest algorithm');
  if (key?.asymmetricKeyType !== 'ed25519') throw new Error('verify: only Ed25519 public keys are available in the browser agent');
  const sig = bytesOf(signature);
  if (sig.length !== nacl.sign.signatureLength) return false;
  return nacl.sign.detached.verify(bytesOf(data), sig, key.raw);
}

export const createPrivateKey = unavailable('createPrivateKey');
export const generateKeyPairSync = unavailable('generateKeyPairSync');
export const sign = unavailable('sign');
export const createCipheriv = unavailable('createCipheriv');
export const createDecipheriv = unavailable('createDecipheriv');
export const diffieHellman = unavailable('diffieHellman');
export const hkdfSync = unavailable('hkdfSync');
export type KeyObject = never;
