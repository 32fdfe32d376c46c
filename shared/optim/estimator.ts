/**
 * How a task's losses become its projected gradients g (docs/learning.md, "Forward differences").
 *
 * - `central` (the default): two forward passes per seed, g = (L₊ − L₋) / 2ε with L± the loss at θ ± εz.
 * - `forward`: one forward pass per seed, at θ + εz, and the task's q seeds share one baseline: the mean of their
 *   losses L̄. g_k = (L_k − L̄) / ε · q / (q − 1). Centring on the mean removes the loss at θ (which would cost a
 *   pass) and the curvature term ε/2 · zᵀHz common to every seed; the factor q/(q − 1) makes the average of the
 *   q terms an unbiased estimate again (centring takes out one of the q degrees of freedom). Half the forward
 *   passes and half the noise passes per direction, so twice the directions for the same work; it needs at
 *   least two seeds per task.
 *
 * Both sides use these functions: the agent to compute g, the coordinator to check that g matches the losses.
 */
import { z } from 'zod';

export const ESTIMATORS = ['central', 'forward'] as const;
export type Estimator = (typeof ESTIMATORS)[number];
export const estimatorSchema = z.enum(ESTIMATORS);

export function isEstimator(value: unknown): value is Estimator {
  return typeof value === 'string' && (ESTIMATORS as readonly string[]).includes(value);
}

/** Seeds a task must carry for the estimator (forward centres on their mean, so it needs two). */
export function minSeedsFor(estimator: Estimator): number {
  return estimator === 'forward' ? 2 : 1;
}

/** Throws a RangeError naming `field` when a task of `seeds` seeds cannot use the estimator. */
export function checkEstimatorSeeds(estimator: Estimator, seeds: number, field: string): void {
  if (seeds < minSeedsFor(estimator)) {
    throw new RangeError(
      `${field}: the forward estimator centres each task's losses on their mean, so it needs at least 2 seeds per task, got ${seeds}`,
    );
  }
}

/** The forward estimator's g per seed and the baseline L̄ it centres on (every loss must be finite). */
export function forwardGradients(losses: readonly number[], epsilon: number): { g: number[]; baseline: number } {
  const q = losses.length;
  if (q < 2) throw new RangeError(`forwardGradients: needs at least 2 losses, got ${q}`);
  let sum = 0;
  for (const loss of losses) sum += loss;
  const baseline = sum / q;
  const scale = q / (q - 1) / epsilon;
  return { g: losses.map((loss) => (loss - baseline) * scale), baseline };
}

/**
 * The g a result's k-th losses imply: for `forward`, lossMinus carries the task's baseline L̄ and the caller
 * checks separately that it is the mean of the task's lossPlus (baselineMismatch).
 */
export function impliedG(estimator: Estimator, lossPlus: number, lossMinus: number, epsilon: number, seeds: number): number {
  return estimator === 'forward' ? ((lossPlus - lossMinus) * (seeds / (seeds - 1))) / epsilon : (lossPlus - lossMinus) / (2 * epsilon);
}

/**
 * For a forward result: the index of the first lossMinus that is not the mean of the lossPlus values (within
 * float rounding), or -1 when all are.
 */
export function baselineMismatch(lossPlus: readonly number[], lossMinus: readonly number[]): number {
  let sum = 0;
  for (const loss of lossPlus) sum += loss;
  const baseline = sum / lossPlus.length;
  return lossMinus.findIndex((value) => !(Math.abs(value - baseline) <= 1e-9 * (1 + Math.abs(baseline))));
}
