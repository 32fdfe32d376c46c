/**
 * Replays log entries onto a slab. Consecutive entries are fused into one accumulate call (up to a bounded
 * number of terms), which is bit-identical to applying them one by one — accumulate is defined as successive
 * perturbs in order — but walks memory once per batch instead of once per entry.
 */
import type { NoiseEngine } from '../noise/engine.js';
import { PackedEntries, type Distribution } from '../noise/index.js';
import type { LogEntry } from './log-entry.js';

/** Terms per fused accumulate call: enough to amortise the pass over memory, small enough to stay cheap to pack. */
const TERMS_PER_PASS = 1024;

export function replay(
  engine: NoiseEngine,
  slab: Float32Array,
  entries: readonly LogEntry[],
  distribution: Distribution,
  options: { offset?: number } = {},
): void {
  let batch: Array<{ seed: bigint; coeff: number }> = [];
  const flush = (): void => {
    if (batch.length === 0) return;
    engine.accumulate(slab, PackedEntries.from(batch), { distribution, offset: options.offset ?? 0 });
    batch = [];
  };
  for (const entry of entries) {
    for (const term of entry.terms) {
      batch.push(term);
      if (batch.length === TERMS_PER_PASS) flush();
    }
  }
  flush();
}
