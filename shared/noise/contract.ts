/**
 * The noise contract's constants (docs/noise.md). Every float constant is pinned by its IEEE-754 binary32 bit
 * pattern so that the TypeScript fallback and the C++ addon (which spells the same values as hex-float literals)
 * cannot drift apart through decimal rounding.
 */

const bitsView = new Uint32Array(1);
const floatView = new Float32Array(bitsView.buffer);

export function float32FromBits(bits: number): number {
  bitsView[0] = bits;
  return floatView[0]!;
}

export function float32Bits(value: number): number {
  floatView[0] = value;
  return bitsView[0]!;
}

/** Counter word c2 selects the stream, so the two distributions never reuse each other's blocks. */
export const STREAM_GAUSSIAN = 0;
export const STREAM_RADEMACHER = 1;
/** Low-rank extension (lowrank v1): U is drawn from stream 2 under the seed's key, V from stream 3 under (k1, 0). */
export const STREAM_LOWRANK_U = 2;
export const STREAM_LOWRANK_V = 3;
/** Largest rank the low-rank extension accepts. */
export const MAX_LOWRANK_RANK = 64;

/** c_r = f32(1/√r), computed in double and rounded once (exact powers of two for r = 1, 4, 16, 64). */
export function lowRankScale(rank: number): number {
  return Math.fround(1 / Math.sqrt(rank));
}

/** Elements served by one Philox block: four Gaussian values, or 128 Rademacher signs (one bit each). */
export const GAUSSIAN_PER_BLOCK = 4;
export const RADEMACHER_PER_BLOCK = 128;

/** Largest global element index + 1: indices stay exact integers in a double. */
export const MAX_GLOBAL_INDEX = Number.MAX_SAFE_INTEGER;

export const SQRT2 = float32FromBits(0x3fb504f3);
export const LN2 = float32FromBits(0x3f317218);
/** atanh series for ln(m): ln m = 2s(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9), s = (m − 1)/(m + 1). */
export const LOG_C3 = float32FromBits(0x3eaaaaab);
export const LOG_C5 = float32FromBits(0x3e4ccccd);
export const LOG_C7 = float32FromBits(0x3e124925);
export const LOG_C9 = float32FromBits(0x3de38e39);
/** Angle step: f32(π/4) · 2^-21, exact (a power-of-two scaling). */
export const ANGLE_STEP = float32FromBits(0x3f490fdb) * 2 ** -21;
/** Taylor coefficients of sin and cos on [0, π/4]. */
export const SIN_C3 = float32FromBits(0xbe2aaaab);
export const SIN_C5 = float32FromBits(0x3c088889);
export const SIN_C7 = float32FromBits(0xb9500d01);
export const SIN_C9 = float32FromBits(0x3638ef1d);
export const COS_C2 = float32FromBits(0xbf000000);
export const COS_C4 = float32FromBits(0x3d2aaaab);
export const COS_C6 = float32FromBits(0xbab60b61);
export const COS_C8 = float32FromBits(0x37d00d01);
