/** Messages between WorkerBackend and its worker thread (structured clone: bigints and typed arrays pass as is). */
import type { Estimator } from '../shared/optim/estimator.js';
import type { Manifest } from '../shared/model/index.js';
import type { Distribution, Seed } from '../shared/noise/index.js';
import type { BatchData } from './batch-feeds.js';
import type { DecayUpdate, RecordDpEvaluation, RestoreMode } from './mezo-backend.js';
import type { UpdateRule } from './mezo-evaluator.js';

export interface WorkerInit {
  model: Uint8Array;
  manifest: Manifest;
  slab: Float32Array;
  distribution: Distribution;
  /** Rank of 'lowrank' noise. */
  rank?: number;
  noise: string;
  noiseThreads?: number;
  intraOpThreads?: number;
  restore: RestoreMode;
  checkpointPath?: string;
  checkpointInMemory?: boolean;
}

export type WorkerCall =
  | { kind: 'evaluate'; seeds: readonly Seed[]; epsilon: number; batch: BatchData; fuse?: UpdateRule; recordDp?: RecordDpEvaluation; estimator?: Estimator }
  | { kind: 'apply'; terms: ReadonlyArray<{ seed: Seed; coeff: number }>; decay?: DecayUpdate }
  | { kind: 'run'; batch: BatchData }
  | { kind: 'snapshot' }
  | { kind: 'sha256' }
  | { kind: 'load'; slab: Float32Array }
  | { kind: 'close' };

export type WorkerRequest = { id: number } & WorkerCall;

export interface WorkerResponse {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string };
}
