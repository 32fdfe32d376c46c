/**
 * Compaction benchmark: what a replica pays to reach the head of a long K-seed-pool log, replaying every entry in
 * order versus starting at the last rebase record (the base slab, one K-term pass, then the tail), on the default
 * model's slab; plus what each path moves on the wire (FetchLog pages) next to a snapshot. The log is synthetic
 * (coefficients from a cosine schedule over a fixed pool), built in memory with the real UpdateLog.
 */
import { UpdateLog, replay, type LogEntry } from '../../shared/log/index.js';
import { loadDefaultModel, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { SeededRng } from '../../shared/data/rng.js';
import { entryFieldBytes, fetchLogBytes, fetchSnapshotBytes } from '../../shared/transport/index.js';
import { hostInfo, time, type SuiteResult, type Timing } from './harness.js';

export interface CompactionBenchOptions {
  /** Update entries in the log. */
  updates?: number;
  /** K, the pool. */
  poolSize?: number;
  /** Distinct pool seeds per update (agents per round × seeds per agent). */
  termsPerUpdate?: number;
  /** A rebase after every this many updates. */
  compactEvery?: number;
  /** Updates after the last rebase (the tail a joiner replays after it). */
  tail?: number;
  repetitions?: number;
}

function draw64(rng: SeededRng): bigint {
  return BigInt(rng.nextUint32()) | (BigInt(rng.nextUint32()) << 32n);
}

export async function benchCompaction(options: CompactionBenchOptions = {}): Promise<SuiteResult> {
  const updates = options.updates ?? 10_000;
  const poolSize = options.poolSize ?? 16;
  const termsPerUpdate = options.termsPerUpdate ?? 4;
  const compactEvery = options.compactEvery ?? 1000;
  const tail = options.tail ?? 100;
  const repetitions = options.repetitions ?? 3;
  const prepared = await loadDefaultModel();
  const base = prepared.slab;

  const rng = new SeededRng(1, 'bench-compaction');
  const pool = Array.from({ length: poolSize }, () => draw64(rng));
  const log = UpdateLog.inMemory({ jobId: 'bench', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian' });
  const total = updates + tail;
  for (let round = 0; round < total; round++) {
    const lr = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + Math.cos((Math.PI * round) / total));
    const start = rng.nextBelow(poolSize);
    const terms = Array.from({ length: termsPerUpdate }, (_, j) => ({ seed: pool[(start + j) % poolSize]!, coeff: (-lr * (rng.nextFloat() * 2 - 1)) / termsPerUpdate }));
    await log.append({ round, lr, terms });
    if ((round + 1) % compactEvery === 0 && round + 1 <= updates) await log.appendRebase({ round });
  }
  const entries = log.entries();
  const inOrder = entries.filter((e) => e.kind === 'update');
  const rebaseAt = log.lastRebaseVersion;
  const fromRebase = entries.slice(rebaseAt - 1);
  const rebaseTerms = entries[rebaseAt - 1]!.terms.length;
  const termCount = (list: readonly LogEntry[]): number => list.reduce((n, e) => n + e.terms.length, 0);

  noise.setThreads(1);
  const slab = base.slice();
  const reset = (): void => slab.set(base);
  const whole: Timing = time(() => replay(noise, slab, inOrder, 'gaussian'), { repetitions, reset, warmup: 0 });
  const inOrderSha = slabSha256(slab);
  const inOrderWeights = slab.slice();
  const compacted: Timing = time(() => replay(noise, slab, entries, 'gaussian', { base }), { repetitions: repetitions * 5, reset });
  const compactedSha = slabSha256(slab);
  let differing = 0;
  let worst = 0;
  for (let i = 0; i < slab.length; i++) {
    if (!Object.is(slab[i], inOrderWeights[i])) differing++;
    worst = Math.max(worst, Math.abs(slab[i]! - inOrderWeights[i]!));
  }

  const head = log.version;
  const fields = (list: readonly LogEntry[]): number => list.reduce((n, e) => n + entryFieldBytes(e), 0);
  // The same updates without compaction, against the compacted log from its last rebase.
  const wholeLogBytes = fetchLogBytes(inOrder.length, fields(inOrder), inOrder.length);
  const rebaseLogBytes = fetchLogBytes(fromRebase.length, fields(fromRebase), head);
  const snapshotBytes = fetchSnapshotBytes(head, base.length * 4);

  const table = [
    {
      path: 'no compaction: every update',
      entries: inOrder.length,
      'term passes': termCount(inOrder),
      'replay ms': whole.medianMs,
      'FetchLog bytes': wholeLogBytes,
    },
    {
      path: 'last rebase + tail',
      entries: fromRebase.length,
      'term passes': termCount(fromRebase),
      'replay ms': compacted.medianMs,
      'FetchLog bytes': rebaseLogBytes,
    },
    { path: 'snapshot (for scale)', entries: 0, 'term passes': 0, 'replay ms': 0, 'FetchLog bytes': snapshotBytes },
  ];
  return {
    suite: 'compaction',
    date: new Date().toISOString(),
    host: hostInfo(),
    noise: noise.kind,
    config: { updates, tail, poolSize, termsPerUpdate, compactEvery, slabLength: base.length, rebases: entries.length - inOrder.length, rebaseAt, rebaseTerms },
    whole,
    compacted,
    speedup: whole.medianMs / compacted.medianMs,
    bytes: { wholeLog: wholeLogBytes, fromRebase: rebaseLogBytes, snapshot: snapshotBytes },
    bits: { differing, of: base.length, worstAbsDifference: worst, inOrderSha, compactedSha },
    table,
  };
}
