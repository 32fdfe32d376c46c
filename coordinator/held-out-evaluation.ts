/**
 * Held-out evaluation of the model a coordinator's log describes: before the first round, after every `every`
 * committed rounds, and at the end, the coordinator's materialised weights (base + log, the same bits every
 * replica holds) are scored on a held-out dataset (edge-agent/dataset-evaluation.ts) by a backend of its own.
 * Each result goes to the run monitor (the eval gauges, the dashboard, the run record) and to a callback (a
 * progress bar, a report). `mezo coordinator --eval-every` and `mezo simulate` both use it.
 *
 *   const evaluation = new HeldOutEvaluation({ coordinator, backend, dataset, every: 10, rounds: 100, monitor });
 *   await evaluation.evaluateHead();   // the weights before this run's first round
 *   await coordinator.run();
 *   await evaluation.finish();         // the queued evaluations, then the final weights
 */
import { scoreDataset, type BatchRunner } from '../edge-agent/dataset-evaluation.js';
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { Coordinator, RoundReport } from './coordinator.js';
import type { Evaluation } from './run-record.js';

/** An evaluation of the weights after `round` (-1: the base weights, before any round). */
export interface HeldOutScore {
  round: number;
  /** Null when the model is not a classifier (its loss head reports no correct count). */
  accuracy: number | null;
  loss: number;
  examples: number;
}

/** The parts of a Coordinator the evaluation reads (a Coordinator is one). */
export type EvaluatedCoordinator = Pick<Coordinator, 'onRound' | 'materialise'> & {
  readonly log: { readonly version: number; entries(from?: number, to?: number): ReadonlyArray<{ round: number }> };
};

export interface HeldOutEvaluationInit {
  coordinator: EvaluatedCoordinator;
  /** Runs the model's loss head: weights are loaded into it before each evaluation (so it is this class's alone). */
  backend: BatchRunner & { load(slab: Float32Array): Promise<void> };
  dataset: LocalDataset<FeatureArray>;
  /** Evaluate after every this many committed rounds (rounds r with (r + 1) % every == 0). */
  every: number;
  /** Rounds of the job: the last one is evaluated by finish(), not twice. */
  rounds: number;
  /** Whether accuracy means anything (a classifier's loss head); default true. */
  classifier?: boolean;
  /** Examples per forward pass (default 500). */
  batchSize?: number;
  /** Receives every result, in round order (RunMonitor.recordEvaluation fits). */
  monitor?: { recordEvaluation(round: number, result: { accuracy?: number | null; loss?: number | null }): Evaluation };
  onEvaluation?: (score: HeldOutScore) => void;
}

export class HeldOutEvaluationError extends Error {
  override name = 'HeldOutEvaluationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class HeldOutEvaluation {
  /** Every result so far, in round order. */
  readonly scores: HeldOutScore[] = [];
  private readonly init: HeldOutEvaluationInit;
  private readonly unsubscribe: () => void;
  /** Evaluations run one at a time, in the order they were queued (the backend holds one set of weights). */
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private finished = false;

  constructor(init: HeldOutEvaluationInit) {
    if (!Number.isSafeInteger(init.every) || init.every < 1) throw new HeldOutEvaluationError(`HeldOutEvaluation: every must be a positive integer, got ${init.every}`);
    if (init.dataset.size === 0) throw new HeldOutEvaluationError('HeldOutEvaluation: the held-out dataset is empty');
    this.init = init;
    this.unsubscribe = init.coordinator.onRound((report) => this.observe(report));
  }

  /** The newest result, if any. */
  get latest(): HeldOutScore | undefined {
    return this.scores.at(-1);
  }

  /** Evaluates the weights at the log head now: round −1 on an empty log, else the last committed round. */
  async evaluateHead(): Promise<HeldOutScore> {
    return this.queue(this.headRound(), this.init.coordinator.materialise().slice());
  }

  /**
   * Stops listening to rounds, waits for the queued evaluations and evaluates the final weights unless their
   * round already was. Rethrows the first evaluation error. Idempotent.
   */
  async finish(): Promise<HeldOutScore | undefined> {
    if (!this.finished) {
      this.finished = true;
      this.unsubscribe();
      await this.chain;
      if (this.failure) throw this.failure;
      const round = this.headRound();
      if (this.latest?.round !== round) await this.queue(round, this.init.coordinator.materialise().slice());
    }
    if (this.failure) throw this.failure;
    return this.latest;
  }

  /** Stops listening without evaluating anything more (a run that failed). */
  stop(): void {
    this.finished = true;
    this.unsubscribe();
  }

  private headRound(): number {
    const log = this.init.coordinator.log;
    return log.version === 0 ? -1 : log.entries(log.version - 1)[0]!.round;
  }

  private observe(report: RoundReport): void {
    if ((report.round + 1) % this.init.every !== 0 || report.round + 1 >= this.init.rounds) return;
    // A copy: the materialised slab moves on with the next round while this one waits its turn.
    void this.queue(report.round, this.init.coordinator.materialise().slice()).catch(() => undefined);
  }

  private queue(round: number, slab: Float32Array): Promise<HeldOutScore> {
    const run = this.chain.then(async () => {
      const { backend, dataset } = this.init;
      let score: HeldOutScore;
      try {
        await backend.load(slab);
        const result = await scoreDataset(backend, dataset, this.init.batchSize ?? 500);
        score = { round, accuracy: this.init.classifier === false ? null : result.accuracy, loss: result.loss, examples: result.examples };
      } catch (err) {
        const failure = new HeldOutEvaluationError(`held-out evaluation after round ${round} failed: ${(err as Error).message}`, { cause: err });
        this.failure ??= failure;
        throw failure;
      }
      this.scores.push(score);
      this.init.monitor?.recordEvaluation(round, { accuracy: score.accuracy, loss: Number.isFinite(score.loss) ? score.loss : null });
      this.init.onEvaluation?.(score);
      return score;
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
