/**
 * Dirichlet label skew: small α gives each agent a few dominant classes, large α approaches IID.
 *
 * Two ways to draw it (both complete: every example goes to exactly one agent):
 * - 'by-class' (default; Yurochkin et al. 2019, Wang et al. 2020): for each class, p ~ Dir(α·1_K) over the
 *   K agents and the class's examples are split in those proportions. Agent sizes vary, and with small α some
 *   agents can end up empty: the draw is then repeated (see minPerAgent / maxAttempts / allowEmpty).
 * - 'by-agent' (Hsu et al. 2019): each agent draws its class mixture q_k ~ Dir(α·1_C) and fills an equal
 *   share of N/K slots, each slot a class drawn from q_k among the classes not yet used up. Sizes are equal,
 *   so no agent is empty; the last agents are pushed towards the leftover classes when pools run dry.
 * Gamma draws (Marsaglia–Tsang, in log space) come from the seeded generator in ../rng.ts.
 */
import type { LocalDataset } from '../dataset.js';
import { describe, requireInt, requirePositive } from '../describe.js';
import { SeededRng } from '../rng.js';
import {
  checkBaseOptions,
  makePartition,
  positionsByClass,
  type BasePartitionOptions,
  type Partition,
} from './partition.js';

export interface DirichletOptions extends BasePartitionOptions {
  /** Concentration α > 0: 0.1 is strongly skewed, 1 moderately, 100 nearly IID. */
  alpha: number;
  /** 'by-class' (default) or 'by-agent', see the file comment. */
  mode?: 'by-class' | 'by-agent';
  /** by-class: re-draw until every agent has at least this many examples (default 1). */
  minPerAgent?: number;
  /** by-class: give up after this many draws with a RangeError (default 100). */
  maxAttempts?: number;
  /** by-class: accept the first draw even with empty agents, reported in Partition.emptyAgents (default false). */
  allowEmpty?: boolean;
}

/** Splits n into K counts proportional to p (largest remainder; ties to the lower agent index). */
function apportion(n: number, p: Float64Array): Int32Array {
  const counts = new Int32Array(p.length);
  const remainders: { k: number; r: number }[] = [];
  let given = 0;
  for (let k = 0; k < p.length; k++) {
    const exact = n * p[k]!;
    counts[k] = Math.floor(exact);
    given += counts[k]!;
    remainders.push({ k, r: exact - counts[k]! });
  }
  remainders.sort((a, b) => b.r - a.r || a.k - b.k);
  for (let j = 0; given < n; j++, given++) counts[remainders[j % remainders.length]!.k]! += 1;
  return counts;
}

function drawByClass(byClass: Uint32Array[], numAgents: number, alpha: number, rng: SeededRng): number[][] {
  const lists: number[][] = Array.from({ length: numAgents }, () => []);
  const concentration = new Float64Array(numAgents).fill(alpha);
  for (const positions of byClass) {
    if (positions.length === 0) continue;
    const shuffled = rng.shuffle(positions.slice());
    const counts = apportion(shuffled.length, rng.dirichlet(concentration));
    let start = 0;
    for (let k = 0; k < numAgents; k++) {
      for (let j = 0; j < counts[k]!; j++) lists[k]!.push(shuffled[start + j]!);
      start += counts[k]!;
    }
  }
  return lists;
}

function drawByAgent(byClass: Uint32Array[], numAgents: number, alpha: number, rng: SeededRng, n: number): number[][] {
  const pools = byClass.map((positions) => rng.shuffle(positions.slice()));
  const remaining = pools.map((p) => p.length);
  const present = remaining.map((r, c) => (r > 0 ? c : -1)).filter((c) => c >= 0);
  const lists: number[][] = [];
  for (let k = 0; k < numAgents; k++) {
    const q = rng.dirichlet(new Float64Array(present.length).fill(alpha));
    const size = Math.floor(n / numAgents) + (k < n % numAgents ? 1 : 0);
    const list: number[] = [];
    for (let slot = 0; slot < size; slot++) {
      let total = 0;
      for (let j = 0; j < present.length; j++) if (remaining[present[j]!]! > 0) total += q[j]!;
      // q may put all its mass on used-up classes; fall back to the pools' own sizes.
      const weight = (j: number): number => {
        const left = remaining[present[j]!]!;
        return left === 0 ? 0 : total > 0 ? q[j]! : left;
      };
      let sum = 0;
      for (let j = 0; j < present.length; j++) sum += weight(j);
      let u = rng.nextFloat() * sum;
      let pick = -1;
      for (let j = 0; j < present.length; j++) {
        const w = weight(j);
        if (w === 0) continue;
        pick = j;
        if (u < w) break;
        u -= w;
      }
      const c = present[pick]!;
      remaining[c]! -= 1;
      list.push(pools[c]![remaining[c]!]!);
    }
    lists.push(list);
  }
  return lists;
}

/** Dirichlet(α) label-skewed partition; see the file comment for the two modes and the empty-agent policy. */
export function partitionDirichlet(dataset: LocalDataset, options: DirichletOptions): Partition {
  const method = 'partitionDirichlet';
  const { numAgents, seed } = checkBaseOptions(options, method);
  const alpha = requirePositive(options.alpha, `${method}: options.alpha`);
  const mode = options.mode ?? 'by-class';
  if (mode !== 'by-class' && mode !== 'by-agent') {
    throw new TypeError(`${method}: options.mode must be 'by-class' or 'by-agent', got ${describe(mode)}`);
  }
  const n = dataset.size;
  const byClass = positionsByClass(dataset);
  if (mode === 'by-agent') {
    if (numAgents > n) {
      throw new RangeError(`${method}: options.numAgents (${numAgents}) exceeds the dataset size (${n})`);
    }
    const rng = new SeededRng(seed, 'dirichlet', 'by-agent');
    return makePartition('dirichlet', drawByAgent(byClass, numAgents, alpha, rng, n), n);
  }
  const allowEmpty = options.allowEmpty ?? false;
  if (typeof allowEmpty !== 'boolean') {
    throw new TypeError(`${method}: options.allowEmpty must be a boolean, got ${describe(allowEmpty)}`);
  }
  const minPerAgent = requireInt(options.minPerAgent ?? 1, `${method}: options.minPerAgent`, 0);
  const maxAttempts = requireInt(options.maxAttempts ?? 100, `${method}: options.maxAttempts`, 1);
  if (!allowEmpty && minPerAgent * numAgents > n) {
    throw new RangeError(
      `${method}: numAgents × minPerAgent (${numAgents} × ${minPerAgent}) exceeds the dataset size (${n})`,
    );
  }
  let smallest = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const lists = drawByClass(byClass, numAgents, alpha, new SeededRng(seed, 'dirichlet', 'by-class', attempt));
    smallest = lists.reduce((m, l) => Math.min(m, l.length), Infinity);
    if (allowEmpty || smallest >= minPerAgent) return makePartition('dirichlet', lists, n, attempt);
  }
  throw new RangeError(
    `${method}: no draw in ${maxAttempts} attempts gave every agent >= ${minPerAgent} examples ` +
      `(the last gave one agent ${smallest}); ` +
      'raise alpha, use fewer agents, lower minPerAgent, or pass allowEmpty: true',
  );
}
