/**
 * The backend an agent trains with. Federation replicas must stay bit-identical to base + applied log entries,
 * so agents ask for restore 'reload' (the weights are reloaded after each ±εz evaluation rather than restored by
 * subtraction, which is off by an ulp in many elements).
 */
import type { PreparedModel } from '../shared/model/index.js';
import type { Distribution, NoiseEngine } from '../shared/noise/index.js';
import { InProcessBackend, type BackendOptions, type MezoBackend } from './mezo-backend.js';
import { WorkerBackend, type WorkerBackendOptions } from './worker-backend.js';

export interface AgentBackendOptions {
  /** Run the model on a worker thread (default true: the network loop stays responsive). */
  worker?: boolean;
  intraOpThreads?: number;
  /** Threads the noise addon may split large slabs over (unset: the engine's default). */
  noiseThreads?: number;
  /** In-process backends only: the noise engine to use. */
  engine?: NoiseEngine;
  noise?: 'auto' | 'native' | 'js';
  /** Where the backend may keep the checkpoint it reloads from. */
  checkpointPath?: string;
  /** Rank of the job's 'lowrank' noise (the join message's rank). */
  rank?: number;
}

export async function createAgentBackend(
  prepared: PreparedModel,
  distribution: Distribution,
  options: AgentBackendOptions = {},
): Promise<MezoBackend> {
  const restore = {
    restore: 'reload' as const,
    ...(options.checkpointPath !== undefined ? { checkpointPath: options.checkpointPath } : {}),
  };
  const threads = options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {};
  if (options.worker ?? true) {
    const workerOptions: WorkerBackendOptions = {
      distribution,
      ...(options.rank !== undefined ? { rank: options.rank } : {}),
      ...threads,
      ...(options.noiseThreads !== undefined ? { noiseThreads: options.noiseThreads } : {}),
      ...(options.noise ? { noise: options.noise } : {}),
      ...restore,
    };
    return WorkerBackend.start(prepared, workerOptions);
  }
  const engine = options.engine ?? (await import('../shared/noise/index.js')).noise;
  if (options.noiseThreads !== undefined) engine.setThreads(options.noiseThreads);
  const inProcessOptions: BackendOptions = { distribution, ...(options.rank !== undefined ? { rank: options.rank } : {}), ...threads, ...restore };
  return InProcessBackend.create(prepared, engine, inProcessOptions);
}
