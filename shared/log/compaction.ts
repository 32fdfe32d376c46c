/**
 * Compaction: the rebase record (kind 2) and the rule that defines its terms.
 *
 * With a fixed pool of K seeds, every update entry is a handful of (seed, coefficient) terms over the same K
 * seeds, so the weights at version v are, up to float32 rounding, base + Σ_k C_k·z(seed_k) with C_k the sum of
 * every coefficient applied with seed k. Applying that sum is NOT bit-identical to applying the entries in
 * order (each term of each entry rounds the weights once), so a replica that replayed the collapsed form could
 * never match one that stayed in sync. The rebase record makes the collapse part of the history instead: its
 * meaning, for every replica alike, is "θ := base + Σ_k C_k·z(seed_k), one fused accumulate in record order".
 * All replicas re-anchor at the same version to the same bits, and a late joiner replays K terms plus the
 * entries after the last rebase, whatever the history's length and learning-rate schedule.
 *
 * The sums, exactly. For a rebase at version v, let P be the previous rebase (none: genesis). For each seed k
 * that appears in P or in an update entry after P:
 *
 *   S_k = s_k(P) + c_1 + c_2 + … + c_n      (IEEE binary64 additions, left to right, from the double value of
 *                                            P's binary32 term for k, or +0 when P has no term for k; c_i are
 *                                            the stored binary32 coefficients of seed k in the entries after P,
 *                                            in version order and, within an entry, in term order)
 *   C_k = f32(S_k)                          (round to nearest binary32, ties to even; must be finite)
 *
 * and the record lists (seed_k, C_k) for every such k, seeds ascending as unsigned 64-bit integers. Chaining
 * from the previous rebase (rather than from genesis) means whoever holds the last rebase and the entries after
 * it can compute, and so verify, the next one: an agent that caught up by jumping to a rebase checks every
 * later rebase, and the history before the last rebase is never needed again. The intermediate rounding costs
 * at most half an ulp of C_k per rebase.
 *
 * Weight decay multiplies the weights, so a history with decay is not a sum of per-seed terms: a rebase is
 * refused when an update since the previous rebase (or genesis) carries a decay other than 1.
 */
import type { LogEntry, UpdateTerm } from './log-entry.js';

/** A rebase cannot be formed (decay in the history, a sum out of float32 range) or does not match the log. */
export class CompactionError extends Error {
  override name = 'CompactionError';
}

const bySeed = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** The running sums of the rule above, fed the log's entries in version order. */
export class CoefficientSums {
  private readonly sums = new Map<bigint, number>();
  /** Version of the first update with decay since the last rebase (0: none). */
  private decayedAt = 0;
  /** Version of the last entry folded in. */
  version = 0;

  /**
   * Sums that start at a rebase record without the history before it (a replica that jumped there): the rule
   * needs nothing older, so the next rebase can still be checked.
   */
  static startingAt(rebase: LogEntry): CoefficientSums {
    if (rebase.kind !== 'rebase') throw new CompactionError(`coefficient sums: entry ${rebase.version} is not a rebase record`);
    const sums = new CoefficientSums();
    sums.version = rebase.version - 1;
    sums.add(rebase);
    return sums;
  }

  /** Folds in the next entry: an update adds its coefficients; a rebase restarts the sums from its terms. */
  add(entry: LogEntry): void {
    if (entry.version !== this.version + 1) {
      throw new CompactionError(`coefficient sums: entry ${entry.version} does not follow version ${this.version}`);
    }
    this.version = entry.version;
    if (entry.kind === 'rebase') {
      this.sums.clear();
      for (const term of entry.terms) this.sums.set(term.seed, Math.fround(term.coeff));
      this.decayedAt = 0;
      return;
    }
    if (entry.decay !== 1 && this.decayedAt === 0) this.decayedAt = entry.version;
    for (const term of entry.terms) this.sums.set(term.seed, (this.sums.get(term.seed) ?? 0) + Math.fround(term.coeff));
  }

  /** Seeds a rebase here would list. */
  get size(): number {
    return this.sums.size;
  }

  /** The terms of a rebase record appended after the entries folded in so far. */
  terms(): UpdateTerm[] {
    if (this.decayedAt !== 0) {
      throw new CompactionError(
        `entry ${this.decayedAt} decays the weights; weight decay multiplies the weights, so the history does not collapse to per-seed sums (no rebase with weight decay)`,
      );
    }
    return [...this.sums.keys()].sort(bySeed).map((seed) => {
      const coeff = Math.fround(this.sums.get(seed)!);
      if (!Number.isFinite(coeff)) throw new CompactionError(`the coefficient sum of seed ${seed} (${this.sums.get(seed)}) is beyond float32 range`);
      return { seed, coeff };
    });
  }

  /** Why `rebase` is not the record the rule gives at this point (undefined when it is). */
  mismatch(rebase: Pick<LogEntry, 'terms'>): string | undefined {
    let expected: UpdateTerm[];
    try {
      expected = this.terms();
    } catch (err) {
      return (err as Error).message;
    }
    if (rebase.terms.length !== expected.length) return `it lists ${rebase.terms.length} seeds, the log's sums ${expected.length}`;
    for (let k = 0; k < expected.length; k++) {
      const got = rebase.terms[k]!;
      const want = expected[k]!;
      if (got.seed !== want.seed) return `term ${k} has seed ${got.seed}, the log's sums seed ${want.seed}`;
      if (!Object.is(Math.fround(got.coeff), want.coeff)) return `seed ${got.seed} has coefficient ${got.coeff}, the log's sum is ${want.coeff}`;
    }
    return undefined;
  }
}

/** The terms of a rebase appended after `entries` (the log from genesis, in order). */
export function collapseTerms(entries: readonly LogEntry[]): UpdateTerm[] {
  const sums = new CoefficientSums();
  for (const entry of entries) sums.add(entry);
  return sums.terms();
}

/** Index in `entries` of the last rebase record (−1: none). Replay starts there: it overwrites what came before. */
export function lastRebaseIndex(entries: readonly LogEntry[]): number {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.kind === 'rebase') return i;
  return -1;
}

/** Checks every rebase record in `entries` (the log from genesis) against the rule; throws CompactionError. */
export function verifyRebases(entries: readonly LogEntry[]): void {
  const sums = new CoefficientSums();
  for (const entry of entries) {
    if (entry.kind === 'rebase') {
      const wrong = sums.mismatch(entry);
      if (wrong !== undefined) throw new CompactionError(`rebase record at version ${entry.version} does not follow from the entries before it: ${wrong}`);
    }
    sums.add(entry);
  }
}
