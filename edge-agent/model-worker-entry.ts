/**
 * The worker thread behind WorkerBackend: owns the onnxruntime session and the MeZO evaluator, so forward passes
 * and noise passes never block the agent's event loop. The weights live here only (onnxruntime does not accept
 * shared memory as input), and the parent asks for a copy or a hash when it needs one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createNoiseEngine, type NoiseImplementation } from '../shared/noise/index.js';
import type { PreparedModel } from '../shared/model/index.js';
import { InProcessBackend } from './mezo-backend.js';
import type { WorkerRequest, WorkerInit, WorkerResponse } from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;

async function main(): Promise<void> {
  const engine = createNoiseEngine(init.noise as NoiseImplementation);
  if (init.noiseThreads !== undefined) engine.setThreads(init.noiseThreads);
  const prepared: PreparedModel = { model: init.model, slab: new Float32Array(0), manifest: init.manifest, warnings: [] };
  const backend = await InProcessBackend.create(prepared, engine, {
    slab: init.slab,
    distribution: init.distribution,
    ...(init.rank !== undefined ? { rank: init.rank } : {}),
    restore: init.restore,
    ...(init.checkpointPath !== undefined ? { checkpointPath: init.checkpointPath } : {}),
    ...(init.checkpointInMemory !== undefined ? { checkpointInMemory: init.checkpointInMemory } : {}),
    ...(init.intraOpThreads !== undefined ? { intraOpThreads: init.intraOpThreads } : {}),
  });
  port.on('message', (request: WorkerRequest) => {
    const reply = (response: Omit<WorkerResponse, 'id'>): void => port.postMessage({ id: request.id, ...response });
    const handle = async (): Promise<unknown> => {
      switch (request.kind) {
        case 'evaluate':
          return backend.evaluate(request.seeds, request.epsilon, request.batch, request.fuse, request.recordDp, request.estimator);
        case 'apply':
          return backend.apply(request.terms, request.decay);
        case 'run':
          return backend.run(request.batch);
        case 'snapshot':
          return backend.snapshot();
        case 'sha256':
          return backend.sha256();
        case 'load':
          return backend.load(request.slab);
        case 'close':
          await backend.close();
          return undefined;
      }
    };
    handle().then(
      (result) => reply({ ok: true, result }),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        reply({ ok: false, error: { name: error.name, message: error.message } });
      },
    );
  });
  port.postMessage({ id: 0, ok: true, result: { noise: engine.kind } });
}

main().catch((err: unknown) => {
  const error = err instanceof Error ? err : new Error(String(err));
  port.postMessage({ id: 0, ok: false, error: { name: error.name, message: error.message } });
});
