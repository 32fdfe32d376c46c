/**
 * The cryptography of secure aggregation (Bonawitz et al., CCS 2017), on node:crypto alone:
 *
 * - X25519 key pairs (one to encrypt shares, one to derive pairwise masks), their raw 32-byte forms, and key
 *   agreement;
 * - a PRG: HKDF-SHA256 turns a seed (a pairwise DH secret or a self-mask seed) and a context naming the job,
 *   round, attempt and pair into an AES-256-CTR key, whose keystream is read as 64-bit words;
 * - fixed-point encoding of scalars as integers modulo 2^64, where masked sums wrap and cancel exactly;
 * - AES-256-GCM sealing of Shamir shares for their recipient, with the sender, recipient and round as
 *   associated data so a share cannot be replayed into another pair or round.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { FIELD_PRIME, bytesToField, fieldToBytes } from './shamir.js';

export const X25519_KEY_BYTES = 32;
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const MOD64 = 1n << 64n;

export interface MaskingKeyPair {
  privateKey: KeyObject;
  /** The clamped private scalar as a Shamir field element (what a share rebuilds). */
  secret: bigint;
  publicRaw: Buffer;
}

/** RFC 7748 clamping: the scalar X25519 really uses, so sharing it loses nothing. */
function clamp(raw: Buffer): Buffer {
  const k = Buffer.from(raw);
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

/** A fresh X25519 key pair whose private scalar is a field element (redrawn in the ~2^-250 case it is not). */
export function generateMaskingKeyPair(): MaskingKeyPair {
  for (;;) {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const clamped = clamp(d);
    const secret = bytesToField(clamped);
    if (secret >= FIELD_PRIME) continue;
    return { privateKey, secret, publicRaw: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url') };
  }
}

/** The private key a rebuilt scalar stands for. */
export function privateKeyFromSecret(secret: bigint): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, fieldToBytes(secret)]), format: 'der', type: 'pkcs8' });
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_BYTES) throw new RangeError(`an X25519 public key is ${X25519_KEY_BYTES} bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function publicRawOf(privateKey: KeyObject): Buffer {
  return Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
}

/** The X25519 shared secret of our private key and their public key. */
export function agree(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  return diffieHellman({ privateKey, publicKey });
}

/** Where a key or stream is used: the job, round, attempt and the two agents (ordered), so no two uses share one. */
export function pairContext(jobId: string, round: number, attempt: number, a: string, b: string): string {
  const [low, high] = a < b ? [a, b] : [b, a];
  return `${jobId}\u0000${round}\u0000${attempt}\u0000${low}\u0000${high}`;
}

function derive(seed: Uint8Array, purpose: string, context: string): Buffer {
  return Buffer.from(hkdfSync('sha256', seed, Buffer.from('mezo-secure-aggregation/v1'), Buffer.from(`${purpose}\u0000${context}`), 32));
}

/** `count` pseudo-random 64-bit words from `seed` for `context`: AES-256-CTR under an HKDF-derived key. */
export function prgWords(seed: Uint8Array, purpose: 'pair-mask' | 'self-mask', context: string, count: number): BigUint64Array {
  const cipher = createCipheriv('aes-256-ctr', derive(seed, purpose, context), Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(count * 8));
  const words = new BigUint64Array(count);
  for (let i = 0; i < count; i++) words[i] = stream.readBigUInt64LE(i * 8);
  return words;
}

/** A self-mask seed as a field element (so it can be shared) and its 32 bytes (what seeds the PRG). */
export function selfMaskSeedBytes(seed: bigint): Buffer {
  return fieldToBytes(seed);
}

// ---- fixed point modulo 2^64 ----

/**
 * round(x · 2^scaleLog2) as an element of Z/2^64 (two's complement). The caller keeps |x · 2^scaleLog2| below
 * 2^62 / n so that the sum of n of them decodes without wrapping.
 */
export function encodeFixed(x: number, scaleLog2: number): bigint {
  if (!Number.isFinite(x)) throw new RangeError(`encodeFixed: ${x} is not finite`);
  const scaled = Math.round(x * 2 ** scaleLog2);
  if (Math.abs(scaled) >= 2 ** 62) throw new RangeError(`encodeFixed: ${x} at scale 2^${scaleLog2} exceeds 2^62`);
  return BigInt.asUintN(64, BigInt(scaled));
}

/** The signed value of a sum modulo 2^64, divided by 2^scaleLog2. */
export function decodeFixed(sum: bigint, scaleLog2: number): number {
  return Number(BigInt.asIntN(64, sum)) / 2 ** scaleLog2;
}

/** a += sign · b, element-wise modulo 2^64 (BigUint64Array stores every value modulo 2^64). */
export function addWords(a: BigUint64Array, b: BigUint64Array, sign: 1 | -1 = 1): void {
  if (a.length !== b.length) throw new RangeError(`addWords: lengths ${a.length} and ${b.length} differ`);
  for (let i = 0; i < a.length; i++) a[i] = sign === 1 ? a[i]! + b[i]! : a[i]! - b[i]!;
}

export function wordsEqual(a: BigUint64Array, b: BigUint64Array): boolean {
  return a.length === b.length && a.every((w, i) => w === b[i]);
}

export const toWord = (value: bigint): bigint => ((value % MOD64) + MOD64) % MOD64;

// ---- share sealing ----

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM with a key derived from the pair's DH secret; returns nonce ‖ ciphertext ‖ tag. */
export function seal(dhSecret: Uint8Array, context: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', derive(dhSecret, 'share-seal', context), nonce);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Opens what seal() produced; throws when the key, context or bytes differ. */
export function open(dhSecret: Uint8Array, context: string, sealed: Uint8Array): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new RangeError(`a sealed share is at least ${NONCE_BYTES + TAG_BYTES} bytes, got ${sealed.length}`);
  const bytes = Buffer.from(sealed);
  const decipher = createDecipheriv('aes-256-gcm', derive(dhSecret, 'share-seal', context), bytes.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
}
