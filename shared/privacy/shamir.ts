/**
 * Shamir secret sharing over the prime field GF(p), p = 2^255 − 19 (Shamir 1979), for secure aggregation's
 * dropout recovery (Bonawitz et al. 2017): an agent splits its self-mask seed and its masking private key into
 * shares so that any `threshold` of its share holders can rebuild them and fewer learn nothing.
 *
 * A secret is a field element (a bigint below p); a share is (x, y) with x the holder's non-zero, distinct
 * x-coordinate and y = f(x) for a random polynomial f of degree threshold − 1 with f(0) = secret. Shares travel
 * as 32 little-endian bytes of y. The coefficients come from node:crypto's generator.
 */
import { randomBytes } from 'node:crypto';

/** 2^255 − 19: prime (the field of Curve25519), and above every clamped X25519 private scalar but a handful. */
export const FIELD_PRIME = (1n << 255n) - 19n;
/** Bytes of one encoded field element. */
export const FIELD_BYTES = 32;

export interface Share {
  /** The holder's x-coordinate, 1 ≤ x < p. */
  x: number;
  y: bigint;
}

export class ShamirError extends Error {
  override name = 'ShamirError';
}

const mod = (a: bigint): bigint => {
  const r = a % FIELD_PRIME;
  return r < 0n ? r + FIELD_PRIME : r;
};

function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % FIELD_PRIME;
    b = (b * b) % FIELD_PRIME;
    e >>= 1n;
  }
  return result;
}

/** a⁻¹ mod p (Fermat: a^(p−2)); a must not be 0 mod p. */
export function fieldInverse(a: bigint): bigint {
  if (mod(a) === 0n) throw new ShamirError('0 has no inverse');
  return modPow(a, FIELD_PRIME - 2n);
}

/** A uniformly random field element, by rejection from 255 random bits. */
export function randomFieldElement(): bigint {
  for (;;) {
    const bytes = randomBytes(FIELD_BYTES);
    bytes[31]! &= 0x7f;
    const value = bytesToField(bytes);
    if (value < FIELD_PRIME) return value;
  }
}

export function fieldToBytes(value: bigint): Buffer {
  if (value < 0n || value >= FIELD_PRIME) throw new ShamirError('field element out of range');
  const out = Buffer.alloc(FIELD_BYTES);
  let v = value;
  for (let i = 0; i < FIELD_BYTES; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Reads 32 little-endian bytes as an integer (not reduced: the caller checks it is below p). */
export function bytesToField(bytes: Uint8Array): bigint {
  if (bytes.length !== FIELD_BYTES) throw new ShamirError(`a field element is ${FIELD_BYTES} bytes, got ${bytes.length}`);
  let v = 0n;
  for (let i = FIELD_BYTES - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

function checkXs(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isSafeInteger(x) || x < 1) throw new ShamirError(`share x-coordinates must be positive integers, got ${x}`);
    if (seen.has(x)) throw new ShamirError(`share x-coordinate ${x} appears twice`);
    seen.add(x);
  }
}

/** Splits `secret` into one share per x in `xs`; any `threshold` of them rebuild it. */
export function split(secret: bigint, threshold: number, xs: readonly number[]): Share[] {
  if (secret < 0n || secret >= FIELD_PRIME) throw new ShamirError('the secret must be a field element (0 ≤ secret < 2^255 − 19)');
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new ShamirError(`threshold must be a positive integer, got ${threshold}`);
  if (threshold > xs.length) throw new ShamirError(`threshold ${threshold} exceeds the ${xs.length} share holders`);
  checkXs(xs);
  const coefficients = [secret];
  for (let i = 1; i < threshold; i++) coefficients.push(randomFieldElement());
  return xs.map((x) => {
    // Horner's rule from the top coefficient.
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coefficients.length - 1; i >= 0; i--) y = (y * bx + coefficients[i]!) % FIELD_PRIME;
    return { x, y };
  });
}

/**
 * Rebuilds the secret from `threshold` shares (Lagrange interpolation at 0). Fewer shares than the threshold
 * throw instead of returning a wrong value; extra shares beyond the threshold are ignored.
 */
export function reconstruct(shares: readonly Share[], threshold: number): bigint {
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new ShamirError(`threshold must be a positive integer, got ${threshold}`);
  if (shares.length < threshold) throw new ShamirError(`${shares.length} shares given, ${threshold} needed`);
  const used = shares.slice(0, threshold);
  checkXs(used.map((s) => s.x));
  for (const s of used) if (s.y < 0n || s.y >= FIELD_PRIME) throw new ShamirError(`share at x = ${s.x} is not a field element`);
  // Σ y_j · Π_{m≠j} x_m / (x_m − x_j), summed as one fraction so that a single inversion is needed.
  let top = 0n;
  let bottom = 1n;
  for (let j = 0; j < used.length; j++) {
    let numerator = used[j]!.y;
    let denominator = 1n;
    const xj = BigInt(used[j]!.x);
    for (let m = 0; m < used.length; m++) {
      if (m === j) continue;
      const xm = BigInt(used[m]!.x);
      numerator = (numerator * xm) % FIELD_PRIME;
      denominator = mod(denominator * (xm - xj));
    }
    top = (top * denominator + numerator * bottom) % FIELD_PRIME;
    bottom = (bottom * denominator) % FIELD_PRIME;
  }
  const secret = (top * fieldInverse(bottom)) % FIELD_PRIME;
  return secret;
}
