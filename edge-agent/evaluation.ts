/**
 * The middleware chain around a task's evaluation. The task runner (task-runner.ts) evaluates a task as
 * `composeEvaluation(middleware)(context)`: each middleware gets the context and `next`, the rest of the chain
 * ending at the backend, and may act before and after it, change what it returns, or throw (the task then goes
 * unanswered, as when the model fails). The simulation injects its faults this way (simulation/faults.ts).
 *
 * Record-level DP is not one of these layers: clipping needs each example's loss, which exists only inside the
 * backend's forward passes (on the worker thread), so the context carries the task's DP parameters to the
 * backend instead (shared/privacy/record-dp.ts).
 */
import type { Task } from '../shared/transport/index.js';
import type { BatchData } from './batch-feeds.js';
import type { MezoBackend, RecordDpEvaluation } from './mezo-backend.js';
import type { SeedEvaluation } from './mezo-evaluator.js';

/** What one evaluation works on. */
export interface EvaluationContext {
  readonly agentId: string;
  /**
   * The task as the coordinator sent it, validated. `task.config` holds the Strategy's settings for this agent's
   * task (Strategy.configureTask: strings, finite numbers and booleans by key), undefined when it gave none; a
   * middleware reads a per-round hyper-parameter from it, e.g. `context.task.config?.['temperature']`.
   */
  readonly task: Task;
  /** The agent's next batch of local data (task.batchSize rows, fewer when its data is smaller). */
  readonly batch: BatchData;
  readonly backend: MezoBackend;
  /** Record-level DP the backend applies (from task.recordPrivacy), undefined without. */
  readonly recordDp: RecordDpEvaluation | undefined;
}

/** Two perturbed losses and g per seed of the task. */
export type Evaluation = (context: EvaluationContext) => Promise<SeedEvaluation[]>;

/** One layer around the evaluation: calls `next` (or not) and returns what the task's answer is made of. */
export type EvaluationMiddleware = (context: EvaluationContext, next: Evaluation) => Promise<SeedEvaluation[]>;

/** The innermost evaluation: the backend's two forward passes per seed on the batch. */
export const evaluateOnBackend: Evaluation = ({ task, batch, backend, recordDp }) =>
  backend.evaluate(task.seeds, task.epsilon, batch, undefined, recordDp, task.estimator);

/** Checks a middleware list given from outside (AgentInit.evaluation), naming the bad entry. */
export function checkMiddleware(middleware: unknown, field: string): readonly EvaluationMiddleware[] {
  if (middleware === undefined) return [];
  if (!Array.isArray(middleware)) throw new TypeError(`${field} must be an array of functions (context, next) => Promise<SeedEvaluation[]>`);
  middleware.forEach((layer, i) => {
    if (typeof layer !== 'function') throw new TypeError(`${field}[${i}] must be a function (context, next) => Promise<SeedEvaluation[]>, got ${typeof layer}`);
  });
  return [...(middleware as EvaluationMiddleware[])];
}

/** The chain as one evaluation: the first middleware is the outermost, `inner` the last step. */
export function composeEvaluation(middleware: readonly EvaluationMiddleware[], inner: Evaluation = evaluateOnBackend): Evaluation {
  return middleware.reduceRight<Evaluation>((next, layer) => (context) => layer(context, next), inner);
}
