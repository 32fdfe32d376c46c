/**
 * A MezoBackend whose model runs on a worker thread. onnxruntime's run() holds the thread that calls it for the
 * whole forward pass; here that thread is the worker's, so the agent's network loop keeps answering while a
 * task computes. The weights live on the worker; snapshot() and sha256() fetch a copy or a hash.
 */
import { Worker } from 'node:worker_threads';
import type { Estimator } from '../shared/optim/estimator.js';
import type { Manifest, PreparedModel, RunResult } from '../shared/model/index.js';
import type { Distribution, Seed } from '../shared/noise/index.js';
import { compiledSibling } from '../shared/compiled-path.js';
import type { BatchData } from './batch-feeds.js';
import { checkLoadable, type DecayUpdate, type MezoBackend, type RecordDpEvaluation, type RestoreMode } from './mezo-backend.js';
import type { SeedEvaluation, UpdateRule } from './mezo-evaluator.js';
import type { WorkerCall, WorkerInit, WorkerResponse } from './worker-protocol.js';
import { checkPerturbation } from '../shared/optim/perturbation.js';

export interface WorkerBackendOptions {
  distribution?: Distribution;
  /** Rank of 'lowrank' noise (required with it). */
  rank?: number;
  intraOpThreads?: number;
  /** Noise implementation inside the worker (default: MEZO_NOISE or auto). */
  noise?: 'auto' | 'native' | 'js';
  noiseThreads?: number;
  /** Initial weights (default: the prepared base slab). Copied to the worker. */
  slab?: Float32Array;
  /** As BackendOptions: 'reload' (default, exact) or 'subtract'. */
  restore?: RestoreMode;
  checkpointPath?: string;
  checkpointInMemory?: boolean;
}

export class WorkerBackendError extends Error {
  override name = 'WorkerBackendError';
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** A typed array that owns its whole buffer, so structured clone does not copy a larger parent buffer. */
function compact<T extends Float32Array | BigInt64Array>(array: T): T {
  return array.byteOffset === 0 && array.byteLength === array.buffer.byteLength ? array : (array.slice() as T);
}

function portable(batch: BatchData): BatchData {
  return { features: compact(batch.features), labels: compact(batch.labels), size: batch.size, shape: batch.shape };
}

export class WorkerBackend implements MezoBackend {
  readonly manifest: Manifest;
  readonly distribution: Distribution;
  readonly rank: number | undefined;
  readonly restore: RestoreMode;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(worker: Worker, manifest: Manifest, distribution: Distribution, restore: RestoreMode, rank: number | undefined) {
    this.worker = worker;
    this.distribution = distribution;
    this.rank = rank;
    this.restore = restore;
    this.manifest = manifest;
    worker.on('message', (message: WorkerResponse) => this.settle(message));
    worker.on('error', (err) => this.fail(new WorkerBackendError(`model worker crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.fail(new WorkerBackendError(`model worker exited with code ${code}`)));
  }

  static async start(prepared: PreparedModel, options: WorkerBackendOptions = {}): Promise<WorkerBackend> {
    const initial = options.slab ?? prepared.slab;
    if (initial.length !== prepared.manifest.slabLength) {
      throw new RangeError(`options.slab must hold manifest.slabLength (${prepared.manifest.slabLength}) values, got ${initial.length}`);
    }
    // Checked here, so a bad rank fails in the caller's thread rather than as a worker crash.
    checkPerturbation({ distribution: options.distribution ?? 'gaussian', rank: options.rank }, 'options');
    const init: WorkerInit = {
      model: prepared.model,
      manifest: prepared.manifest,
      slab: initial,
      distribution: options.distribution ?? 'gaussian',
      ...(options.rank !== undefined ? { rank: options.rank } : {}),
      noise: options.noise ?? process.env.MEZO_NOISE ?? 'auto',
      restore: options.restore ?? 'reload',
      ...(options.checkpointPath !== undefined ? { checkpointPath: options.checkpointPath } : {}),
      ...(options.checkpointInMemory !== undefined ? { checkpointInMemory: options.checkpointInMemory } : {}),
      ...(options.noiseThreads !== undefined ? { noiseThreads: options.noiseThreads } : {}),
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
    };
    const worker = new Worker(compiledSibling(import.meta.url, './model-worker-entry.js'), { workerData: init });
    const backend = new WorkerBackend(worker, prepared.manifest, init.distribution, init.restore, init.rank);
    await backend.request(0); // the worker's ready message
    return backend;
  }

  private settle(message: WorkerResponse): void {
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    if (message.ok) waiting.resolve(message.result);
    else {
      const error = new Error(message.error?.message ?? 'model worker failed');
      error.name = message.error?.name ?? 'Error';
      waiting.reject(error);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  /** Sends a request (id 0 waits for the ready message) and resolves with the worker's result. */
  private request<T>(id: number, body?: WorkerCall): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (body) this.worker.postMessage({ id, ...body });
    });
  }

  private call<T>(body: WorkerCall): Promise<T> {
    return this.request<T>(this.nextId++, body);
  }

  evaluate(seeds: readonly Seed[], epsilon: number, batch: BatchData, fuse?: UpdateRule, recordDp?: RecordDpEvaluation, estimator?: Estimator): Promise<SeedEvaluation[]> {
    return this.call({ kind: 'evaluate', seeds, epsilon, batch: portable(batch), ...(fuse ? { fuse } : {}), ...(recordDp ? { recordDp } : {}), ...(estimator ? { estimator } : {}) });
  }

  apply(terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay?: DecayUpdate): Promise<void> {
    return this.call({ kind: 'apply', terms, ...(decay ? { decay } : {}) });
  }

  run(batch: BatchData): Promise<RunResult> {
    return this.call({ kind: 'run', batch: portable(batch) });
  }

  snapshot(): Promise<Float32Array> {
    return this.call({ kind: 'snapshot' });
  }

  sha256(): Promise<string> {
    return this.call({ kind: 'sha256' });
  }

  async load(slab: Float32Array): Promise<void> {
    checkLoadable(slab, this.manifest.slabLength);
    await this.call({ kind: 'load', slab });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    await this.call({ kind: 'close' });
    await this.worker.terminate();
  }
}
