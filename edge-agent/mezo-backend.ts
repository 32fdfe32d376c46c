/**
 * Where a MeZO agent's model lives. The trainer and the agent speak to a backend; the in-process one runs the
 * model on the calling thread, the worker one (worker-backend.ts) on a worker thread so the caller's event loop
 * stays free for heartbeats and cancellation while onnxruntime computes.
 */
import type { Estimator } from '../shared/optim/estimator.js';
import type { Manifest, PreparedModel, RunResult, TrainableSession } from '../shared/model/index.js';
import { createTrainableSession, paddingRanges, slabSha256 } from '../shared/model/index.js';
import type { NoiseEngine } from '../shared/noise/engine.js';
import type { Distribution, Seed } from '../shared/noise/index.js';
import { feedsForBatch, type BatchData } from './batch-feeds.js';
import { MezoEvaluator, type SeedEvaluation, type UpdateRule } from './mezo-evaluator.js';
import { MemorySlabCheckpoint, type SlabCheckpoint } from './slab-checkpoint.js';
import { checkPerturbation, noiseModeFor } from '../shared/optim/perturbation.js';

/** Record-level DP for one evaluation: clip and noise per example, g divided by the task's batch size. */
export interface RecordDpEvaluation {
  clip: number;
  noiseMultiplier: number;
  batchSize: number;
}

export interface DecayUpdate {
  factor: number;
  ranges: ReadonlyArray<readonly [number, number]>;
}

/** How weights come back after a perturbation: reloaded from a checkpoint (exact) or subtracted (drifts). */
export type RestoreMode = 'reload' | 'subtract';

export interface MezoBackend {
  readonly manifest: Manifest;
  readonly distribution: Distribution;
  /** The rank of 'lowrank' noise (undefined otherwise). */
  readonly rank?: number | undefined;
  readonly restore: RestoreMode;
  /** A copy of the current weights, taken between updates. */
  snapshot(): Promise<Float32Array>;
  /** SHA-256 of the current weights (little-endian float32), as replicas and audits compare them. */
  sha256(): Promise<string>;
  /**
   * Replaces the weights (and the canonical checkpoint) with `slab`, e.g. a snapshot downloaded to catch up:
   * it must hold manifest.slabLength values, all finite.
   */
  load(slab: Float32Array): Promise<void>;
  /**
   * Two perturbed losses per seed on one batch; with `fuse`, each restore also applies the seed's update. With
   * `recordDp`, g is clipped per example and noised (shared/privacy/record-dp.ts). With the `forward` estimator
   * (shared/optim/estimator.ts), one loss per seed centred on the seeds' mean.
   */
  evaluate(seeds: readonly Seed[], epsilon: number, batch: BatchData, fuse?: UpdateRule, recordDp?: RecordDpEvaluation, estimator?: Estimator): Promise<SeedEvaluation[]>;
  /** Weight decay (optional), then θ += Σ coeff·z(seed) in order, in one pass. */
  apply(terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay?: DecayUpdate): Promise<void>;
  /** Loss (and correct count) of the current weights on a batch. */
  run(batch: BatchData): Promise<RunResult>;
  close(): Promise<void>;
}

export interface BackendOptions {
  distribution?: Distribution;
  /** Rank of 'lowrank' noise (required with it); the matrices come from the manifest (lowRankLayoutFromTensors). */
  rank?: number;
  /** onnxruntime intra-op threads (default: onnxruntime's choice). */
  intraOpThreads?: number;
  /** The weights to train in place (default: a copy of the prepared base slab). */
  slab?: Float32Array;
  /**
   * 'reload' (default): restore from a checkpoint of the canonical weights, so they stay bit-identical to
   * base + applied updates. 'subtract': restore by adding εz back — no checkpoint, last-bit drift.
   */
  restore?: RestoreMode;
  /** Where the reload checkpoint lives (default: a private temporary file). */
  checkpointPath?: string;
  /** Keep the checkpoint in memory instead (twice the weights' memory: simulation workers and tests). */
  checkpointInMemory?: boolean;
  /**
   * Where the checkpoint lives, given by the caller (a platform's own storage): takes precedence over
   * checkpointPath and checkpointInMemory. Default: a file (file-slab-checkpoint.ts).
   */
  checkpoint?: (length: number) => SlabCheckpoint;
}

/** What `load` accepts: a Float32Array of exactly `length` finite values (checked before anything changes). */
export function checkLoadable(slab: unknown, length: number): asserts slab is Float32Array {
  if (!(slab instanceof Float32Array)) throw new TypeError('load: slab must be a Float32Array');
  if (slab.length !== length) throw new RangeError(`load: slab has ${slab.length} values, the model needs ${length}`);
  for (let i = 0; i < slab.length; i++) {
    if (!Number.isFinite(slab[i])) throw new RangeError(`load: slab[${i}] is not finite`);
  }
}

async function createCheckpoint(length: number, options: BackendOptions): Promise<SlabCheckpoint | undefined> {
  if ((options.restore ?? 'reload') === 'subtract') return undefined;
  if (options.checkpoint) return options.checkpoint(length);
  if (options.checkpointInMemory) return new MemorySlabCheckpoint();
  // The Node default, loaded only when used: a browser passes checkpointInMemory or its own checkpoint.
  const { FileSlabCheckpoint } = await import('./file-slab-checkpoint.js');
  return new FileSlabCheckpoint(length, options.checkpointPath);
}

export class InProcessBackend implements MezoBackend {
  readonly manifest: Manifest;
  readonly distribution: Distribution;
  readonly rank: number | undefined;
  readonly restore: RestoreMode;
  /** The weights the session reads; change them only through this backend. */
  readonly slab: Float32Array;
  private readonly session: TrainableSession;
  private readonly evaluator: MezoEvaluator;

  private constructor(session: TrainableSession, engine: NoiseEngine, distribution: Distribution, checkpoint: SlabCheckpoint | undefined, rank: number | undefined) {
    this.session = session;
    this.manifest = session.manifest;
    this.slab = session.slab;
    this.distribution = distribution;
    this.restore = checkpoint ? 'reload' : 'subtract';
    const mode = noiseModeFor({ distribution, rank }, session.manifest.tensors);
    this.rank = mode.lowRank?.rank;
    this.evaluator = new MezoEvaluator(engine, session.slab, distribution, checkpoint, paddingRanges(session.manifest.tensors, session.slab.length), mode.lowRank);
  }

  static async create(prepared: PreparedModel, engine: NoiseEngine, options: BackendOptions = {}): Promise<InProcessBackend> {
    const restore = options.restore ?? 'reload';
    checkPerturbation({ distribution: options.distribution ?? 'gaussian', rank: options.rank }, 'options');
    if (restore !== 'reload' && restore !== 'subtract') {
      throw new RangeError(`options.restore must be 'reload' or 'subtract', got ${JSON.stringify(restore)}`);
    }
    if (options.checkpoint !== undefined && typeof options.checkpoint !== 'function') {
      throw new TypeError(`options.checkpoint must be a function (length) => SlabCheckpoint, got ${typeof options.checkpoint}`);
    }
    const session = await createTrainableSession(prepared, {
      slab: options.slab ?? prepared.slab.slice(),
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
    });
    const checkpoint = await createCheckpoint(session.slab.length, options);
    return new InProcessBackend(session, engine, options.distribution ?? 'gaussian', checkpoint, options.rank);
  }

  async evaluate(seeds: readonly Seed[], epsilon: number, batch: BatchData, fuse?: UpdateRule, recordDp?: RecordDpEvaluation, estimator?: Estimator): Promise<SeedEvaluation[]> {
    const feeds = feedsForBatch(this.manifest, batch);
    if (recordDp) return this.evaluator.evaluateRecordDp(seeds, epsilon, () => this.session.runPerExample(feeds), recordDp, recordDp.batchSize, fuse, estimator);
    return this.evaluator.evaluate(seeds, epsilon, async () => (await this.session.run(feeds)).loss, fuse, estimator);
  }

  apply(terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay?: DecayUpdate): Promise<void> {
    return this.evaluator.apply(terms, decay);
  }

  async run(batch: BatchData): Promise<RunResult> {
    const feeds = feedsForBatch(this.manifest, batch);
    return this.evaluator.exclusive(() => this.session.run(feeds));
  }

  snapshot(): Promise<Float32Array> {
    return this.evaluator.exclusive(() => this.slab.slice());
  }

  sha256(): Promise<string> {
    return this.evaluator.exclusive(() => slabSha256(this.slab));
  }

  async load(slab: Float32Array): Promise<void> {
    checkLoadable(slab, this.manifest.slabLength);
    await this.evaluator.exclusive(() => {
      this.slab.set(slab);
      this.evaluator.checkpoint?.save(this.slab);
    });
  }

  async close(): Promise<void> {
    await this.evaluator.exclusive(() => this.evaluator.checkpoint?.close());
    await this.session.release();
  }
}
