/**
 * Validation of the agents' answers. A Result is taken into its round only when it answers the open attempt,
 * from an agent asked in it, once, for exactly the seeds assigned, with a plausible sample count, losses present
 * or absent as the job's privacy mode requires, finite scalars within bounds, and g consistent with the losses.
 * Anything else is counted against the agent that sent it, by reason (or as late, when its round has closed).
 */
import { logger } from '../shared/logger.js';
import { maxAbsRecordDpG } from '../shared/privacy/record-dp.js';
import { baselineMismatch, impliedG } from '../shared/optim/estimator.js';
import type { Result } from '../shared/transport/index.js';
import type { AgentRecord } from './agent-registry.js';
import type { OpenRound } from './open-round.js';
import type { RoundOptions } from './options.js';

/** Why results were rejected; each counts against the agent that sent it. */
export type RejectionReason =
  | 'invalid-message'
  | 'wrong-round'
  | 'not-assigned'
  | 'duplicate'
  | 'wrong-seeds'
  | 'bad-sample-count'
  | 'out-of-bounds'
  | 'inconsistent-g'
  /** A secure-aggregation message that breaks the protocol (or a plain Result in a secure job). */
  | 'secure-aggregation'
  /** A private-mode job's result carried losses, or another job's lacked them. */
  | 'losses-in-private-mode'
  | 'missing-losses';

/** Counts a rejected message against its agent, by reason, and logs why. */
export function reject(agent: AgentRecord, reason: RejectionReason, detail: string): void {
  agent.stats.rejected++;
  agent.stats.rejections[reason] = (agent.stats.rejections[reason] ?? 0) + 1;
  logger.warn({ agent: agent.id, reason, detail }, 'rejected a message from an agent');
}

export class ResultValidator {
  /**
   * @param secure whether the job runs secure aggregation: then no plain Result is taken, only masked input.
   */
  constructor(
    private readonly options: Pick<RoundOptions, 'batchSize' | 'recordDp' | 'maxAbsG' | 'epsilon' | 'estimator'>,
    private readonly secure: boolean,
  ) {}

  /**
   * Takes one Result into `open` when it passes every check (and closes the attempt once its outcome is
   * decided); otherwise counts it late or rejects it. `nextRound` is the round the loop runs next, for a result
   * that arrives while no attempt is open.
   */
  take(agent: AgentRecord, result: Result, open: OpenRound | undefined, nextRound: number): void {
    if (this.secure) return reject(agent, 'secure-aggregation', 'a plain Result in a secure-aggregation job: only masked input is taken');
    const current = open && !open.settled;
    if (!current || result.round !== open.round || result.attempt !== open.attempt) {
      const ref = open ?? { round: nextRound, attempt: Number.MAX_SAFE_INTEGER };
      const past = result.round < ref.round || (result.round === ref.round && result.attempt <= ref.attempt);
      if (past) agent.stats.late++;
      else reject(agent, 'wrong-round', `result for round ${result.round} attempt ${result.attempt}, open: ${open ? `${open.round}/${open.attempt}` : 'none'}`);
      return;
    }
    const seeds = open.assigned.get(agent.id);
    if (!seeds) return reject(agent, 'not-assigned', `round ${result.round} asked other agents`);
    if (open.results.has(agent.id)) return reject(agent, 'duplicate', `second result for round ${result.round}`);
    if (result.seeds.length !== seeds.length || result.seeds.some((s, i) => s !== seeds[i])) {
      return reject(agent, 'wrong-seeds', 'result.seeds differ from the seeds assigned');
    }
    if (result.sampleCount > this.options.batchSize) {
      return reject(agent, 'bad-sample-count', `result.sampleCount ${result.sampleCount} exceeds the batch size ${this.options.batchSize}`);
    }
    const recordDp = this.options.recordDp;
    if (recordDp?.private) {
      // Private mode: the agent releases g alone, with the sample count the accountant assumes.
      if (result.lossPlus !== undefined) return reject(agent, 'losses-in-private-mode', 'result.lossPlus: a private-mode result must carry no losses');
      if (result.sampleCount !== this.options.batchSize) {
        return reject(agent, 'bad-sample-count', `result.sampleCount ${result.sampleCount}: a private-mode result gives the batch size ${this.options.batchSize}`);
      }
    } else if (result.lossPlus === undefined || result.lossMinus === undefined) {
      return reject(agent, 'missing-losses', 'result.lossPlus: the job is not in private mode, so results carry both losses');
    }
    // Under record-level DP g is clipped and noised, so it cannot match the losses: only its range is checked.
    const bound = recordDp ? Math.min(this.options.maxAbsG, maxAbsRecordDpG(recordDp, seeds.length, this.options.batchSize)) : this.options.maxAbsG;
    const eps = this.options.epsilon;
    const estimator = this.options.estimator;
    if (estimator === 'forward' && !recordDp && result.lossPlus && result.lossMinus) {
      // Every lossMinus is the task's baseline: the mean of its lossPlus values.
      const k = baselineMismatch(result.lossPlus, result.lossMinus);
      if (k >= 0) return reject(agent, 'inconsistent-g', `result.lossMinus[${k}] = ${result.lossMinus[k]}, but the forward estimator's baseline is the mean of result.lossPlus`);
    }
    for (let k = 0; k < seeds.length; k++) {
      const g = result.g[k]!;
      if (Math.abs(g) > bound) return reject(agent, 'out-of-bounds', `result.g[${k}] = ${g} exceeds ${bound}`);
      if (recordDp || !result.lossPlus || !result.lossMinus) continue;
      const expected = impliedG(estimator, result.lossPlus[k]!, result.lossMinus[k]!, eps, seeds.length);
      if (Math.abs(g - expected) > 1e-6 * (1 + Math.abs(expected))) {
        return reject(agent, 'inconsistent-g', `result.g[${k}] = ${g}, but the losses give ${expected}`);
      }
    }
    open.results.set(agent.id, { agentId: agent.id, ...result });
    // A valid answer was computed at the round's version: the agent holds at least that (lag metrics between heartbeats).
    agent.version = Math.max(agent.version, open.version);
    open.check();
  }
}
