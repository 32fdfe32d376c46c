/**
 * How a job perturbs the weights: the noise distribution and, for 'lowrank' (LOZO, docs/noise.md), its rank.
 * The rank is part of the job (the log header, the join message); the layout — which tensors are matrices —
 * follows from the model's manifest (lowRankLayoutFromTensors), so every replica derives the same one.
 *
 * Also the "lazy V" seeds: a low-rank direction's V depends only on the seed's high 32 bits, so a trainer or
 * coordinator that keeps the high word over a window of ν steps (rounds) keeps V, and LOZO's updates stay in
 * one subspace for the window while U is fresh per direction.
 */
import { z } from 'zod';
import type { SeededRng } from '../data/index.js';
// The modules themselves, not the noise index: importing this must not load the native addon.
import type { Distribution } from '../noise/engine.js';
import { lowRankLayoutFromTensors, type LowRankLayout } from '../noise/low-rank.js';

export const MAX_RANK = 64;
export const DISTRIBUTIONS = ['gaussian', 'rademacher', 'lowrank'] as const;
export const distributionSchema = z.enum(DISTRIBUTIONS);
export const rankSchema = z.number().int().min(1).max(MAX_RANK);
/** Steps (rounds) over which the seeds' high word, and so V, is kept: 1 draws every seed afresh. */
export const vPeriodSchema = z.number().int().min(1).max(1_000_000);

export interface Perturbation {
  distribution: Distribution;
  /** Required with 'lowrank', absent otherwise. */
  rank?: number | undefined;
}

/** What NoiseEngine calls take besides offset and range. */
export interface NoiseMode {
  distribution: Distribution;
  lowRank?: LowRankLayout;
}

/** Checks that the rank is given exactly when the distribution is 'lowrank'; errors name `where`. */
export function checkPerturbation(p: Perturbation, where: string): Perturbation {
  if (!DISTRIBUTIONS.includes(p.distribution)) {
    throw new RangeError(`${where}.distribution must be one of ${DISTRIBUTIONS.join(', ')}, got ${JSON.stringify(p.distribution)}`);
  }
  if (p.distribution === 'lowrank') {
    if (!rankSchema.safeParse(p.rank).success) throw new RangeError(`${where}.rank must be an integer in [1, ${MAX_RANK}] with distribution 'lowrank', got ${String(p.rank)}`);
    return { distribution: 'lowrank', rank: p.rank! };
  }
  if (p.rank !== undefined) throw new RangeError(`${where}.rank is only allowed with distribution 'lowrank' (got '${p.distribution}')`);
  return { distribution: p.distribution };
}

/** A zod refinement for option objects with `distribution` and `rank` fields. */
export function refinePerturbation(value: { distribution: Distribution; rank?: number | undefined }, ctx: z.RefinementCtx): void {
  if (value.distribution === 'lowrank' && value.rank === undefined) {
    ctx.addIssue({ code: 'custom', path: ['rank'], message: "is required with distribution 'lowrank'" });
  }
  if (value.distribution !== 'lowrank' && value.rank !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['rank'], message: "is only allowed with distribution 'lowrank'" });
  }
}

/**
 * The engine options for a job's perturbation on a model with these tensors. Build it once per model and keep
 * it: the engine caches a layout's checked form per layout object.
 */
export function noiseModeFor(p: Perturbation, tensors: readonly { offset: number; shape: readonly number[] }[]): NoiseMode {
  const checked = checkPerturbation(p, 'perturbation');
  if (checked.distribution !== 'lowrank') return { distribution: checked.distribution };
  return { distribution: 'lowrank', lowRank: lowRankLayoutFromTensors(tensors, checked.rank!) };
}

/** 'gaussian', 'rademacher' or 'lowrank (rank 4)': for logs and summaries. */
export function describePerturbation(p: Perturbation): string {
  return p.distribution === 'lowrank' ? `lowrank (rank ${p.rank})` : p.distribution;
}

/**
 * `count` distinct 64-bit seeds sharing the high word `high` (V shared), low words drawn from `rng`; `taken`
 * holds seeds already used in the same round, which none of the new ones may repeat.
 */
export function seedsWithHighWord(rng: SeededRng, high: number, count: number, taken: Set<bigint> = new Set()): bigint[] {
  if (!Number.isInteger(high) || high < 0 || high > 0xffffffff) throw new RangeError(`seedsWithHighWord: high must be a 32-bit unsigned integer, got ${high}`);
  if (taken.size + count > 0x100000000) throw new RangeError('seedsWithHighWord: more seeds than one high word holds');
  const top = BigInt(high) << 32n;
  const seeds: bigint[] = [];
  while (seeds.length < count) {
    const seed = top | BigInt(rng.nextUint32());
    if (taken.has(seed)) continue;
    taken.add(seed);
    seeds.push(seed);
  }
  return seeds;
}
