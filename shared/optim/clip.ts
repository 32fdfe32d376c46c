/**
 * Clipping a projected gradient g to [−bound, bound]: the one definition used by the coordinator's strategy
 * (each agent's g before aggregating) and by local training (each seed's g before its coefficient).
 */

/** `value` limited to [−bound, bound]; unchanged when `bound` is undefined (no clipping). */
export function clipValue(value: number, bound: number | undefined): number {
  return bound === undefined ? value : Math.max(-bound, Math.min(bound, value));
}
