/**
 * The agent's tasks: whether to take one (the agent's privacy floor, then the device's budget), and for one it
 * takes, catching up to the task's version, the next batch of local data, the evaluation through the
 * middleware chain (evaluation.ts), and the answer: a Result with the scalars, or under secure aggregation the
 * values handed to the masking protocol.
 */
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import { logger } from '../shared/logger.js';
import type { Seed } from '../shared/noise/index.js';
import { belowPrivacyFloor, type PrivacyFloor } from '../shared/privacy/record-dp.js';
import type { ClientSession, CoordinatorClient, Task } from '../shared/transport/index.js';
import { BatchCursor } from './batch-cursor.js';
import type { ChainFollower } from './chain-follower.js';
import type { DeviceBudget } from './device-budget.js';
import { checkMiddleware, composeEvaluation, type Evaluation, type EvaluationMiddleware } from './evaluation.js';
import { secureAggregationClient } from './secure-aggregation-client.js';

export interface TaskRunnerInit {
  agentId: string;
  data: LocalDataset<FeatureArray> | (() => LocalDataset<FeatureArray>);
  dataSeed: Seed | undefined;
  device: DeviceBudget | undefined;
  privacyFloor: PrivacyFloor | undefined;
  /** Layers around each evaluation, outermost first (AgentInit.evaluation). */
  evaluation: readonly EvaluationMiddleware[] | undefined;
}

export class TaskRunner {
  tasksDone = 0;
  /** Tasks declined because the device was busy or the batch did not fit the memory budget. */
  tasksDeclined = 0;
  /** The reason the last task was declined (undefined when it was taken). */
  lastDecline: string | undefined;
  private readonly batches: BatchCursor;
  private readonly evaluate: Evaluation;

  constructor(private readonly init: TaskRunnerInit) {
    this.batches = new BatchCursor(init.data, init.dataSeed);
    this.evaluate = composeEvaluation(checkMiddleware(init.evaluation, 'AgentInit.evaluation'));
  }

  /** A new job starts at the beginning of the data. */
  reset(): void {
    this.batches.reset();
  }

  /**
   * Declines `task` at once when it is below the agent's privacy floor or does not fit the device, sending the
   * Decline on `session`; returns whether it did.
   */
  declined(task: Task, session: ClientSession): boolean {
    // Declined at once, not queued: a busy device should not make its coordinator wait for the deadline.
    // Below the agent's own privacy floor: declined whatever the job asks (the agent's data, its terms).
    const floor = this.init.privacyFloor && belowPrivacyFloor(this.init.privacyFloor, task.recordPrivacy);
    if (floor) logger.warn({ agent: this.init.agentId, round: task.round, why: floor }, "the task's record-level DP is below the agent's floor");
    const declined = floor ? 'privacy' : this.init.device?.declineReason(task.batchSize);
    this.lastDecline = declined;
    if (declined === undefined) return false;
    this.tasksDeclined++;
    logger.info({ agent: this.init.agentId, round: task.round, reason: declined }, 'declined a task');
    session.send({ kind: 'decline', decline: { round: task.round, attempt: task.attempt, reason: declined } });
    return true;
  }

  async run(job: ChainFollower, task: Task, receivedAt: number, client: CoordinatorClient, session: ClientSession): Promise<void> {
    const { backend, accepted } = job;
    if (task.jobId !== accepted.jobId) return;
    if (Date.now() - receivedAt > task.deadlineMs) return; // its round has closed; do not waste the work
    if (job.version < task.version) await job.catchUp(client, task.version);
    if (job.version !== task.version) return; // a stale task: the weights moved on
    const batch = this.batches.next(task.batchSize);
    // Record-level DP (shared/privacy/record-dp.ts): clipped per example, noised, divided by the task's batch size.
    const dp = task.recordPrivacy;
    const recordDp = dp ? { clip: dp.clip, noiseMultiplier: dp.noiseMultiplier, batchSize: task.batchSize } : undefined;
    const evaluations = await this.evaluate({ agentId: this.init.agentId, task, batch, backend, recordDp });
    if (evaluations.some((e) => !e.valid)) {
      logger.warn({ agent: this.init.agentId, round: task.round }, 'a loss was not finite; not answering the task');
      return;
    }
    this.tasksDone++;
    // Private mode releases g alone: no losses, and the batch size the accountant assumes as the sample count.
    const privateMode = dp?.privateMode === true;
    if (task.secureAggregation) {
      // Secure aggregation: the values leave the device only masked, once the neighbours' shares are in.
      const losses = privateMode ? { plus: [], minus: [] } : { plus: evaluations.map((e) => e.lossPlus), minus: evaluations.map((e) => e.lossMinus) };
      secureAggregationClient(session, this.init.agentId).submit(task, evaluations.map((e) => e.g), losses.plus, losses.minus, privateMode ? task.batchSize : batch.size);
      return;
    }
    session.send({
      kind: 'result',
      result: {
        round: task.round,
        attempt: task.attempt,
        seeds: evaluations.map((e) => e.seed),
        g: evaluations.map((e) => e.g),
        ...(privateMode ? {} : { lossPlus: evaluations.map((e) => e.lossPlus), lossMinus: evaluations.map((e) => e.lossMinus) }),
        sampleCount: privateMode ? task.batchSize : batch.size,
      },
    });
  }
}
