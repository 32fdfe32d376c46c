/**
 * The memory a process uses before any model-sized allocation: the runtime itself (code, heap, thread stacks,
 * allocator arenas). Calibrated by measuring peak RSS of real runs on a near-empty model (an MLP 8-8-2 at
 * batch 1), median of repeated runs on the reference machine (docs/plan.md); `npm run bench -- plan-validation`
 * re-measures both and reports them next to these constants.
 */
export interface RuntimeBaseline {
  name: string;
  bytes: number;
  /** How it was measured. */
  source: string;
}

const MiB = 2 ** 20;

/** Node 20 + onnxruntime-node + the noise addon, running MeZO steps (the edge agent's runtime). */
export const NODE_ORT_BASELINE: RuntimeBaseline = Object.freeze({
  name: 'node+onnxruntime',
  bytes: 98 * MiB,
  source: 'peak RSS of 50 MeZO steps on MLP 8-8-2, batch 1, one onnxruntime thread',
});

/** CPython 3.11 + PyTorch 1.13 (CPU), running SGD steps: the reference the backprop predictions are checked against. */
export const PYTORCH_BASELINE: RuntimeBaseline = Object.freeze({
  name: 'python+pytorch',
  bytes: 237 * MiB,
  source: 'peak RSS of 50 SGD steps on MLP 8-8-2, batch 1, one thread (test/bench/bp-baseline.py --sizes 8,8,2 --batch 1)',
});

