/** Errors of the memory planner: an unsupported operator, a shape that cannot be inferred, a bad request. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
}
