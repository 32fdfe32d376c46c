/**
 * Where the agent is in its local data: batch `index` of `epoch`, each epoch a fresh seeded order
 * (dataSeed, epoch). Data given as a function may be dropped and rebuilt between tasks, so the cursor then keeps
 * the position only and skips to it on the rebuilt data.
 */
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { Seed } from '../shared/noise/index.js';
import type { BatchData } from './batch-feeds.js';

export class BatchCursor {
  /** The iterator is kept only for data held fixed. */
  private batches: { size: number; epoch: number; index: number; iterator: Iterator<BatchData> | undefined } | undefined;

  constructor(
    private readonly data: LocalDataset<FeatureArray> | (() => LocalDataset<FeatureArray>),
    private readonly dataSeed: Seed | undefined,
  ) {}

  /** Back to the start of the data (a new job). */
  reset(): void {
    this.batches = undefined;
  }

  next(size: number): BatchData {
    const lazy = typeof this.data === 'function';
    const data = typeof this.data === 'function' ? this.data() : this.data;
    const make = (epoch: number) =>
      data.batches(size, { seed: this.dataSeed ?? 0, epoch, dropLast: data.size >= size });
    if (!this.batches || this.batches.size !== size) this.batches = { size, epoch: 0, index: 0, iterator: undefined };
    const at = this.batches;
    let iterator = at.iterator;
    if (!iterator) {
      // Provided data may be rebuilt between tasks: resume from the position, not from an iterator over old data.
      iterator = make(at.epoch);
      for (let skipped = 0; skipped < at.index && !iterator.next().done; skipped++);
    }
    let next = iterator.next();
    if (next.done) {
      at.epoch++;
      at.index = 0;
      iterator = make(at.epoch);
      next = iterator.next();
    }
    at.index++;
    // Holding the iterator would hold the data (and a batch buffer) of every agent a simulation ever asked.
    at.iterator = lazy ? undefined : iterator;
    return next.value!;
  }
}
