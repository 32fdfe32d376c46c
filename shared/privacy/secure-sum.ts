/**
 * What both ends of a secure-aggregation round compute the same way (docs/privacy.md, "Secure aggregation"):
 * the fixed-point layout of an agent's contribution, the scales that keep a round's sum from wrapping modulo
 * 2^64, the neighbour graph (complete, or the k-regular Harary graph of SecAgg+, Bell et al. 2020) and the
 * threshold, and the masks themselves.
 *
 * A contribution for K seeds is K + 2 words modulo 2^64: round(w · g_k · 2^gScaleLog2) per seed, then w (the
 * weight: the sample count when the strategy weights by it, else 1), then round(ℓ · 2^lossScaleLog2) with ℓ the
 * mean over seeds of (L₊ + L₋)/2. Each |g| is clipped as the strategy asks, then clamped to gBound, and |ℓ| to
 * lossBound; the scales are the largest powers of two at which n such values sum below 2^61 in magnitude, so
 * the sum decodes exactly as the integers' sum (no wrap) and the masks cancel bit for bit.
 */
import type { SecureAggregationSpec } from '../transport/messages.js';
import { SeededRng } from '../data/rng.js';
import { addWords, agree, encodeFixed, pairContext, prgWords, selfMaskSeedBytes, type MaskingKeyPair } from './masking.js';
import type { KeyObject } from 'node:crypto';

/** |ℓ| above this is not a training loss; clamped so that the loss word cannot wrap the sum. */
export const DEFAULT_LOSS_BOUND = 1e6;
const SUM_BOUND_LOG2 = 61;

/** Words in a contribution for `seeds` seeds. */
export const contributionLength = (seeds: number): number => seeds + 2;

/** The largest power of two (as its exponent) at which `participants` values of magnitude ≤ bound sum below 2^61. */
export function scaleLog2For(bound: number, participants: number): number {
  if (!(bound > 0 && Number.isFinite(bound))) throw new RangeError(`scaleLog2For: bound must be positive and finite, got ${bound}`);
  if (!Number.isSafeInteger(participants) || participants < 1) throw new RangeError(`scaleLog2For: participants must be a positive integer, got ${participants}`);
  // One unit of rounding per value is included in the bound (+1).
  return Math.floor(SUM_BOUND_LOG2 - Math.log2(participants * bound + participants));
}

export interface SpecInput {
  participants: number;
  /** Weight by the sample count (at most batchSize) instead of 1. */
  weighted: boolean;
  batchSize: number;
  clipAbs?: number;
  clipL2?: number;
  /** The bound on |g| that holds without a clip (the coordinator's maxAbsG). */
  maxAbsG: number;
  lossBound?: number;
}

export function secureSpec(input: SpecInput): SecureAggregationSpec {
  const gBound = input.clipAbs ?? input.clipL2 ?? input.maxAbsG;
  const lossBound = input.lossBound ?? DEFAULT_LOSS_BOUND;
  const weight = input.weighted ? input.batchSize : 1;
  return {
    gScaleLog2: scaleLog2For(gBound * weight, input.participants),
    lossScaleLog2: scaleLog2For(lossBound, input.participants),
    weighted: input.weighted,
    clipAbs: input.clipAbs ?? 0,
    clipL2: input.clipL2 ?? 0,
    gBound,
    lossBound,
  };
}

const clamp = (x: number, bound: number): number => Math.max(-bound, Math.min(bound, x));

/** An agent's contribution as words modulo 2^64 (unmasked). */
export function encodeContribution(spec: SecureAggregationSpec, g: readonly number[], lossPlus: readonly number[], lossMinus: readonly number[], sampleCount: number): BigUint64Array {
  let values = [...g];
  if (spec.clipAbs > 0) values = values.map((x) => clamp(x, spec.clipAbs));
  if (spec.clipL2 > 0) {
    const norm = Math.sqrt(values.reduce((s, x) => s + x * x, 0));
    if (norm > spec.clipL2) values = values.map((x) => (x * spec.clipL2) / norm);
  }
  const w = spec.weighted ? sampleCount : 1;
  const words = new BigUint64Array(contributionLength(values.length));
  values.forEach((x, k) => (words[k] = encodeFixed(w * clamp(x, spec.gBound), spec.gScaleLog2)));
  words[values.length] = BigInt(w);
  let loss = 0;
  for (let k = 0; k < values.length; k++) loss += ((lossPlus[k] ?? 0) + (lossMinus[k] ?? 0)) / 2;
  loss /= Math.max(1, values.length);
  words[values.length + 1] = encodeFixed(Number.isFinite(loss) ? clamp(loss, spec.lossBound) : 0, spec.lossScaleLog2);
  return words;
}

export interface DecodedSums {
  /** Σ w·g per seed. */
  gSums: number[];
  weightSum: number;
  /** Σ ℓ over contributors. */
  lossSum: number;
}

export function decodeSums(spec: SecureAggregationSpec, sum: BigUint64Array): DecodedSums {
  const seeds = sum.length - 2;
  const signed = (w: bigint) => Number(BigInt.asIntN(64, w));
  return {
    gSums: Array.from({ length: seeds }, (_, k) => signed(sum[k]!) / 2 ** spec.gScaleLog2),
    weightSum: signed(sum[seeds]!),
    lossSum: signed(sum[seeds + 1]!) / 2 ** spec.lossScaleLog2,
  };
}

// ---- the neighbour graph and threshold ----

/**
 * Each participant's neighbours (itself excluded): everyone when `degree` is 0 or at least n − 1; otherwise the
 * Harary graph H(k, n) on a random cycle — a participant is joined to the ⌈k/2⌉ nearest on each side — so each
 * has k or k + 1 neighbours. The cycle's order is drawn from `seed`, round and attempt.
 */
export function neighbourGraph(participants: readonly string[], degree: number, seed: number | string, round: number, attempt: number): Map<string, string[]> {
  const ids = [...participants].sort();
  const n = ids.length;
  const graph = new Map<string, string[]>();
  if (degree === 0 || degree >= n - 1) {
    for (const id of ids) graph.set(id, ids.filter((other) => other !== id));
    return graph;
  }
  const order = Array.from(new SeededRng(seed, 'secure-aggregation-graph', round, attempt).permutation(n), (i) => ids[i]!);
  const half = Math.ceil(degree / 2);
  order.forEach((id, i) => {
    const near = new Set<string>();
    for (let d = 1; d <= half; d++) {
      near.add(order[(i + d) % n]!);
      near.add(order[(i - d + n) % n]!);
    }
    near.delete(id);
    graph.set(id, [...near].sort());
  });
  return graph;
}

/** Shares that rebuild a secret held by `holders` neighbours at threshold fraction θ: ⌈θ·holders⌉, at least 1. */
export function thresholdFor(holders: number, fraction: number): number {
  return Math.max(1, Math.ceil(fraction * holders - 1e-9));
}

// ---- masks ----

/** +1 when `self` adds the pair's mask, −1 when it subtracts it (the smaller id adds). */
export const pairSign = (self: string, other: string): 1 | -1 => (self < other ? 1 : -1);

export function selfMask(seed: bigint, jobId: string, round: number, attempt: number, owner: string, length: number): BigUint64Array {
  return prgWords(selfMaskSeedBytes(seed), 'self-mask', pairContext(jobId, round, attempt, owner, owner), length);
}

export function pairMask(privateKey: KeyObject, otherPublic: KeyObject, jobId: string, round: number, attempt: number, a: string, b: string, length: number): BigUint64Array {
  return prgWords(agree(privateKey, otherPublic), 'pair-mask', pairContext(jobId, round, attempt, a, b), length);
}

/** x + self mask + Σ sign · pair masks with `peers` (each with its masking public key). */
export function maskContribution(
  contribution: BigUint64Array,
  own: { id: string; selfSeed: bigint; masking: MaskingKeyPair },
  peers: ReadonlyArray<{ id: string; maskingKey: KeyObject }>,
  at: { jobId: string; round: number; attempt: number },
): BigUint64Array {
  const masked = contribution.slice();
  addWords(masked, selfMask(own.selfSeed, at.jobId, at.round, at.attempt, own.id, masked.length));
  for (const peer of peers) {
    addWords(masked, pairMask(own.masking.privateKey, peer.maskingKey, at.jobId, at.round, at.attempt, own.id, peer.id, masked.length), pairSign(own.id, peer.id));
  }
  return masked;
}
