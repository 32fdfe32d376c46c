/**
 * Replays log entries onto a slab. Consecutive entries are fused into one accumulate call (up to a bounded
 * number of terms), which is bit-identical to applying them one by one — accumulate is defined as successive
 * perturbs in order — but walks memory once per batch instead of once per entry.
 *
 * A rebase record (compaction.ts) sets the weights to base + its terms, so replay starts at the last rebase in
 * `entries`: what came before it would be overwritten.
 */
import type { NoiseEngine } from '../noise/engine.js';
import { PackedEntries, type Distribution, type LowRankLayout } from '../noise/index.js';
import { clearPadding } from '../model/slab-layout.js';
import { lastRebaseIndex } from './compaction.js';
import type { LogEntry } from './log-entry.js';

/** Terms per fused accumulate call: enough to amortise the pass over memory, small enough to stay cheap to pack. */
const TERMS_PER_PASS = 1024;

export interface ReplayOptions {
  /** Global index of slab[0] (a shard replays its own part). Default 0. */
  offset?: number;
  /** The log header's decay ranges, in global indices; needed when entries carry a decay other than 1. */
  decayRanges?: ReadonlyArray<readonly [number, number]>;
  /**
   * The base slab the log applies to (a shard: its part, indexed like `slab`); needed when entries hold a
   * rebase record, which starts again from the base.
   */
  base?: Float32Array;
  /**
   * The slab's padding (paddingRanges of the model's layout, global indices): zeroed after the entries apply,
   * as every replica keeps it.
   */
  padding?: ReadonlyArray<readonly [number, number]>;
  /**
   * The low-rank layout of a 'lowrank' log (noiseModeFor(header, manifest.tensors)): required with it, since
   * which tensors are matrices comes from the model, not the log.
   */
  lowRank?: LowRankLayout;
}

/**
 * How one entry applies to the weights. The one rule for every replica (replay onto a slab, an agent's
 * backend): a rebase record sets the weights to the base, then adds its terms; an update first multiplies the
 * decay ranges by its decay (undefined: 1, none), then adds its terms.
 */
export interface ReplayStep {
  entry: LogEntry;
  /** The weights start again from the base (a rebase record). */
  fromBase: boolean;
  /** The decay to apply before the terms; undefined when there is none. */
  decay: number | undefined;
}

export function replayStep(entry: LogEntry): ReplayStep {
  // A rebase record's decay is always 1 (log-entry.ts).
  return { entry, fromBase: entry.kind === 'rebase', decay: entry.decay === 1 ? undefined : entry.decay };
}

/** The steps that replay `entries`: from the last rebase record on, since it overwrites what came before. */
export function replaySteps(entries: readonly LogEntry[]): ReplayStep[] {
  return entries.slice(Math.max(0, lastRebaseIndex(entries))).map(replayStep);
}

export function replay(
  engine: NoiseEngine,
  slab: Float32Array,
  entries: readonly LogEntry[],
  distribution: Distribution,
  options: ReplayOptions = {},
): void {
  const offset = options.offset ?? 0;
  if (distribution === 'lowrank' && options.lowRank === undefined) {
    throw new RangeError("replay: options.lowRank (the model's low-rank layout) is required for a 'lowrank' log");
  }
  const noise = distribution === 'lowrank' ? { distribution, lowRank: options.lowRank!, offset } : { distribution, offset };
  let batch: Array<{ seed: bigint; coeff: number }> = [];
  const flush = (): void => {
    if (batch.length === 0) return;
    engine.accumulate(slab, PackedEntries.from(batch), noise);
    batch = [];
  };
  for (const { entry, fromBase, decay } of replaySteps(entries)) {
    if (fromBase) {
      // Only the first step can start from the base, so nothing is pending to flush.
      const base = options.base;
      if (!base) throw new RangeError(`replay: entry ${entry.version} is a rebase record; options.base (the base slab) is needed`);
      if (base.length !== slab.length) throw new RangeError(`replay: options.base holds ${base.length} values, the slab ${slab.length}`);
      slab.set(base);
    }
    if (decay !== undefined) {
      // Decay applies to the weights as they stand before this entry's terms: flush what came earlier first.
      flush();
      applyDecay(slab, decay, options.decayRanges ?? [], offset);
    }
    for (const term of entry.terms) {
      batch.push(term);
      if (batch.length === TERMS_PER_PASS) flush();
    }
  }
  flush();
  // Padding is read by no tensor, so clearing it once at the end equals clearing it after every entry.
  if (options.padding) clearPadding(slab, options.padding, offset);
}

/** slab[i] = f32(slab[i] · factor) over the decay ranges (given in global indices) that fall inside this slab. */
export function applyDecay(
  slab: Float32Array,
  factor: number,
  ranges: ReadonlyArray<readonly [number, number]>,
  offset = 0,
): void {
  if (ranges.length === 0) throw new RangeError('applyDecay: the entry decays weights but no decay ranges were given');
  const f = Math.fround(factor);
  for (const [start, end] of ranges) {
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, slab.length);
    // A binary32 product is exact in a double; the store rounds it once, as a float multiply would.
    for (let i = from; i < to; i++) slab[i] = slab[i]! * f;
  }
}
