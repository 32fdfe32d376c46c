/**
 * The largest member of a zoo family that fits a memory budget under a method: an exponential then binary
 * search over the size parameter, assuming memory grows with size (every family here is monotone in it).
 */
import { analyzeGraph, estimateMemory, type EstimateOptions, type MemoryEstimate, type Method } from './memory-model.js';
import { PlanError } from './plan-error.js';
import { familyGraph, type ZooFamily } from './zoo-family.js';

/** The largest n in [min, max] with fits(n), for a monotone predicate (fits(n) implies fits(m) for m < n); null if none. */
export function largestFitting(fits: (n: number) => boolean, min: number, max: number, step = 1): number | null {
  if (min > max) throw new PlanError(`empty search range [${min}, ${max}]`);
  const at = (k: number): number => min + k * step;
  const last = Math.floor((max - min) / step);
  if (!fits(at(0))) return null;
  // Grow until a size does not fit (or the range ends), then bisect between the last fit and the first miss.
  let good = 0;
  let probe = 1;
  while (probe <= last && fits(at(probe))) {
    good = probe;
    probe = Math.min(last + 1, probe * 2);
  }
  let bad = Math.min(probe, last + 1);
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (fits(at(mid))) good = mid;
    else bad = mid;
  }
  return at(good);
}

export interface FamilyFit {
  method: Method;
  checkpointing: boolean;
  /** The largest fitting size, or null when even the smallest member does not fit. */
  size: number | null;
  /** True when the size is the family's largest: the budget may allow more than the family offers. */
  atLimit: boolean;
  model: string | null;
  parameters: number | null;
  estimate: MemoryEstimate | null;
}

export interface FamilySearchOptions extends EstimateOptions {
  batch: number;
  budgetBytes: number;
}

/** Searches one method (and checkpointing choice) for the largest family member within the budget. */
export function largestInFamily(family: ZooFamily, param: string, method: Method, options: FamilySearchOptions): FamilyFit {
  if (!(options.budgetBytes > 0)) throw new PlanError(`the budget must be positive, got ${options.budgetBytes}`);
  const { min, max } = family.range(param);
  const step = family.name === 'transformer' && param === 'dim' ? 8 : 1;
  const cache = new Map<number, { estimate: MemoryEstimate; parameters: number }>();
  const evaluate = (size: number): { estimate: MemoryEstimate; parameters: number } => {
    let hit = cache.get(size);
    if (hit === undefined) {
      const facts = analyzeGraph(familyGraph(family, param, size), { batch: options.batch });
      hit = { estimate: estimateMemory(facts, method, options), parameters: facts.parameters };
      cache.set(size, hit);
    }
    return hit;
  };
  const size = largestFitting((n) => evaluate(n).estimate.total <= options.budgetBytes, min, max, step);
  const checkpointing = method !== 'mezo' && (options.checkpointing ?? false);
  if (size === null) return { method, checkpointing, size: null, atLimit: false, model: null, parameters: null, estimate: null };
  const { estimate, parameters } = evaluate(size);
  return { method, checkpointing, size, atLimit: size + step > max, model: family.describe(param, size), parameters, estimate };
}

/** Every method (backprop with and without checkpointing). */
export function familyFits(family: ZooFamily, param: string, options: Omit<FamilySearchOptions, 'checkpointing'>): FamilyFit[] {
  const fits = [largestInFamily(family, param, 'mezo', options)];
  for (const method of ['sgd', 'momentum', 'adam'] as const) {
    for (const checkpointing of [false, true]) fits.push(largestInFamily(family, param, method, { ...options, checkpointing }));
  }
  return fits;
}
