/**
 * Philox4x32-10 (Salmon et al., SC'11) in plain TypeScript.
 *
 * JavaScript numbers are doubles, so the 32×32→64-bit products are split: the low word comes from Math.imul,
 * the high word from 16-bit limbs whose partial sums stay below 2^32 — no BigInt, no allocation.
 */

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;
export const PHILOX_ROUNDS = 10;

const M0_HI = PHILOX_M0 >>> 16;
const M0_LO = PHILOX_M0 & 0xffff;
const M1_HI = PHILOX_M1 >>> 16;
const M1_LO = PHILOX_M1 & 0xffff;

/**
 * One Philox4x32-10 block: writes the four output words of counter (c0..c3) under key (k0, k1) into out[0..3].
 * All arguments are treated as uint32.
 */
export function philox4x32(
  out: Uint32Array,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let round = 0; round < PHILOX_ROUNDS; round++) {
    // High words by 16-bit limbs: every partial sum stays below 2^32, so it is exact and shifts apply.
    const a0h = x0 >>> 16;
    const a0l = x0 & 0xffff;
    const t0 = a0h * M0_LO + ((a0l * M0_LO) >>> 16);
    const u0 = a0l * M0_HI + (t0 & 0xffff);
    const hi0 = a0h * M0_HI + (t0 >>> 16) + (u0 >>> 16);
    const lo0 = Math.imul(x0, PHILOX_M0);
    const a2h = x2 >>> 16;
    const a2l = x2 & 0xffff;
    const t2 = a2h * M1_LO + ((a2l * M1_LO) >>> 16);
    const u2 = a2l * M1_HI + (t2 & 0xffff);
    const hi1 = a2h * M1_HI + (t2 >>> 16) + (u2 >>> 16);
    const lo1 = Math.imul(x2, PHILOX_M1);
    const n0 = (hi1 ^ x1 ^ key0) >>> 0;
    const n2 = (hi0 ^ x3 ^ key1) >>> 0;
    x1 = lo1 >>> 0;
    x3 = lo0 >>> 0;
    x0 = n0;
    x2 = n2;
    key0 = (key0 + PHILOX_W0) >>> 0;
    key1 = (key1 + PHILOX_W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}
