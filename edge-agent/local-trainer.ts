/**
 * Local, centralised MeZO fine-tuning of a prepared model on one device's data (`mezo train`): the reference a
 * federated run must match. Every step's update is appended to an update log in the coordinator's format, so
 * base slab + log reproduces the run.
 */
import { z } from 'zod';
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import { rngFor } from '../shared/data/index.js';
import { UpdateLog } from '../shared/log/index.js';
import type { Manifest } from '../shared/model/index.js';
import { checkDatasetFits } from './batch-feeds.js';
import { scoreDataset, type DatasetScore } from './dataset-evaluation.js';
import { learningRateAt, lrScheduleSchema } from '../shared/optim/lr-schedule.js';
import type { MezoBackend } from './mezo-backend.js';
import { coefficientFor, type UpdateRule } from './mezo-evaluator.js';
import { checkEstimatorSeeds, estimatorSchema } from '../shared/optim/estimator.js';
import { checkPerturbation, distributionSchema, rankSchema, seedsWithHighWord, vPeriodSchema } from '../shared/optim/perturbation.js';
import { RecordDpAccountant, parseRecordDp, recordNoiseMultiplierFor, type RecordPrivacySpent } from '../shared/privacy/record-dp.js';

const seedSchema = z.union([
  z.bigint().nonnegative().lt(1n << 64n),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  z.string().regex(/^[0-9]{1,20}$/),
]);

export const localTrainOptionsSchema = z.strictObject({
  steps: z.number().int().positive(),
  batchSize: z.number().int().positive().default(64),
  /** Perturbation size ε. */
  epsilon: z.number().positive().finite().default(1e-3),
  schedule: lrScheduleSchema,
  /** Perturbations per step (q): each is evaluated at the same weights, then all updates apply together. */
  perturbations: z.number().int().min(1).max(256).default(1),
  distribution: distributionSchema.default('gaussian'),
  /**
   * How losses become g (shared/optim/estimator.ts): 'central', two forward passes per perturbation, or
   * 'forward', one per perturbation centred on the step's mean (needs perturbations ≥ 2).
   */
  estimator: estimatorSchema.default('central'),
  /** Rank of 'lowrank' noise (required with it, 1–64). */
  rank: rankSchema.optional(),
  /**
   * Steps over which the perturbation seeds keep their high 32 bits. With 'lowrank' that keeps V, so the updates
   * of a window share one subspace (LOZO's lazy V); 1 draws every seed afresh.
   */
  vPeriod: vPeriodSchema.default(1),
  /** Clip |g| to this value before it becomes a coefficient. */
  clip: z.number().positive().finite().optional(),
  /**
   * Record-level DP (shared/privacy/record-dp.ts, docs/privacy.md): each example's projected gradient clipped,
   * noise of multiplier `noiseMultiplier` (or the one `epsilon` at `delta` needs over the steps at rate
   * batchSize / examples) on every step's g; ε over the run is in the report.
   */
  recordDp: z
    .strictObject({
      clip: z.number().positive().finite(),
      noiseMultiplier: z.number().positive().finite().optional(),
      epsilon: z.number().positive().finite().optional(),
      delta: z.number().gt(0).lt(1).default(1e-5),
    })
    .refine((d) => d.noiseMultiplier !== undefined || d.epsilon !== undefined, { path: ['noiseMultiplier'], message: 'give noiseMultiplier or epsilon' })
    .optional(),
  /** Decoupled weight decay on weight matrices (biases and norm parameters — rank-1 tensors — are skipped). */
  weightDecay: z.number().nonnegative().finite().default(0),
  /** Evaluate on the held-out set every N steps (0: only before and after training). */
  evalEvery: z.number().int().nonnegative().default(0),
  /**
   * Make the update log durable every N steps (0: only at evaluations and at the end). Steps in between are
   * written but not synced one by one (group commit): a crash loses at most the steps since the last sync.
   */
  syncEvery: z.number().int().nonnegative().default(500),
  /** Stop when the held-out loss has not improved by minDelta over `patience` evaluations. */
  earlyStop: z.strictObject({ patience: z.number().int().positive(), minDelta: z.number().nonnegative().default(0) }).optional(),
  /** Seeds every random choice of the run: perturbation seeds and batch order. */
  seed: seedSchema.default(0),
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/).default('local'),
});
export type LocalTrainOptions = z.output<typeof localTrainOptionsSchema>;
export type LocalTrainOptionsInput = z.input<typeof localTrainOptionsSchema>;

export interface CurvePoint {
  step: number;
  /** Mean of (L₊ + L₋)/2 over the steps since the previous point. */
  trainLoss: number;
  eval?: DatasetScore;
}

export interface LocalTrainReport {
  steps: number;
  /** Steps skipped because a loss was not finite (their updates were never applied). */
  skippedSteps: number;
  stoppedEarly: boolean;
  initialEval?: DatasetScore;
  finalEval?: DatasetScore;
  curve: CurvePoint[];
  wallMs: number;
  /** CPU time the process spent over the run (user + system, every thread), ms: the steps' cost whatever else runs. */
  cpuMs: number;
  logVersion: number;
  /** With record-level DP: ε at δ for the training data after the steps taken (every step samples B of n examples). */
  recordPrivacy?: RecordPrivacySpent;
  logHeadHash: string;
  slabSha256: string;
}

export interface LocalTrainInput {
  /** The model, in process or on a worker thread; its distribution must match options.distribution. */
  backend: MezoBackend;
  train: LocalDataset<FeatureArray>;
  heldOut?: LocalDataset<FeatureArray>;
  /** Where the update log goes; in memory when omitted. Must be new or hold this job's earlier entries. */
  logPath?: string;
  options: LocalTrainOptionsInput;
  onProgress?: (progress: { step: number; steps: number; trainLoss: number; eval?: DatasetScore }) => void;
}

/** Slab ranges of rank ≥ 2 tensors: what weight decay applies to. */
export function decayRangesOf(manifest: Manifest): Array<[number, number]> {
  return manifest.tensors
    .filter((t) => t.shape.length >= 2)
    .map((t): [number, number] => [t.offset, t.offset + t.length])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The perturbation seeds of step t: a pure function of (run seed, t, k), so reruns reproduce them. With
 * vPeriod ν > 1 the high word is drawn once per window of ν steps and the low words per seed (distinct in a step).
 */
export function stepSeeds(runSeed: bigint | number | string, step: number, count: number, vPeriod = 1): bigint[] {
  const rng = rngFor(runSeed, 'mezo-step-seeds', step);
  if (vPeriod > 1) return seedsWithHighWord(rng, rngFor(runSeed, 'mezo-v-window', Math.floor(step / vPeriod)).nextUint32(), count);
  return Array.from({ length: count }, () => BigInt(rng.nextUint32()) | (BigInt(rng.nextUint32()) << 32n));
}

export async function trainLocal(input: LocalTrainInput): Promise<LocalTrainReport> {
  const parsed = localTrainOptionsSchema.safeParse(input.options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RangeError(`train options: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const options = parsed.data;
  checkPerturbation(options, 'train options');
  checkEstimatorSeeds(options.estimator, options.perturbations, 'train options: perturbations');
  if (options.estimator !== 'central' && options.recordDp) {
    throw new RangeError("train options: estimator: record-level DP clips each example's two-sided difference, so it needs 'central'");
  }
  const { backend, train, heldOut } = input;
  if (backend.distribution !== options.distribution) {
    throw new RangeError(`train options: distribution is '${options.distribution}' but the backend perturbs with '${backend.distribution}'`);
  }
  if (backend.rank !== options.rank) throw new RangeError(`train options: rank is ${options.rank ?? 'unset'} but the backend's is ${backend.rank ?? 'unset'}`);
  checkDatasetFits(backend.manifest, train.featureShape, train.dtype, train.numClasses);
  if (heldOut) checkDatasetFits(backend.manifest, heldOut.featureShape, heldOut.dtype, heldOut.numClasses);

  const decayRanges = options.weightDecay > 0 ? decayRangesOf(backend.manifest) : [];
  const header = {
    jobId: options.jobId,
    baseSha256: await backend.sha256(),
    distribution: options.distribution,
    ...(options.rank !== undefined ? { rank: options.rank } : {}),
    decayRanges,
  };
  // No one reads this log while the run goes on, so it need not be durable per step (a sync per step costs
  // more than the step itself on a small model): it is synced at checkpoints, evaluations and the end.
  const log = input.logPath ? await UpdateLog.open(input.logPath, header, { durability: 'group' }) : UpdateLog.inMemory(header);
  if (log.version > 0) {
    await log.close();
    throw new RangeError(`train: the update log at ${input.logPath} already holds ${log.version} entries; start from a fresh log`);
  }
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const curve: CurvePoint[] = [];
  let skippedSteps = 0;
  let stoppedEarly = false;
  let lossSinceLastPoint = 0;
  let stepsSinceLastPoint = 0;
  let bestEval = Infinity;
  let evalsWithoutImprovement = 0;

  const initialEval = heldOut ? await scoreDataset(backend, heldOut) : undefined;
  if (initialEval) curve.push({ step: 0, trainLoss: Number.NaN, eval: initialEval });

  // Record-level DP: every step is one subsampled Gaussian release at q = B/n of the training examples.
  const recordDp = options.recordDp
    ? parseRecordDp({
        clip: options.recordDp.clip,
        noiseMultiplier:
          options.recordDp.noiseMultiplier ??
          recordNoiseMultiplierFor({ epsilon: options.recordDp.epsilon!, delta: options.recordDp.delta }, 1, options.batchSize, train.size, options.steps),
      })
    : undefined;
  const accountant = recordDp ? new RecordDpAccountant(recordDp, options.batchSize, train.size, options.recordDp!.delta, options.recordDp!.epsilon) : undefined;
  const recordEvaluation = recordDp ? { clip: recordDp.clip, noiseMultiplier: recordDp.noiseMultiplier, batchSize: options.batchSize } : undefined;

  let epoch = 0;
  let batches = train.batches(options.batchSize, { seed: options.seed, epoch, dropLast: train.size >= options.batchSize });
  let step = 0;
  try {
    for (; step < options.steps; step++) {
      let next = batches.next();
      if (next.done) {
        epoch++;
        batches = train.batches(options.batchSize, { seed: options.seed, epoch, dropLast: train.size >= options.batchSize });
        next = batches.next();
      }
      const lr = learningRateAt(options.schedule, step);
      const seeds = stepSeeds(options.seed, step, options.perturbations, options.vPeriod);
      const rule: UpdateRule = { lr, divisor: options.perturbations, ...(options.clip !== undefined ? { clip: options.clip } : {}) };
      const decay = Math.fround(1 - lr * options.weightDecay);
      // One perturbation and no decay: fold the update into the restore pass (three passes per step).
      const fuse = options.perturbations === 1 && decay === 1;
      const results = await backend.evaluate(seeds, options.epsilon, next.value!, fuse ? rule : undefined, recordEvaluation, options.estimator);
      accountant?.step(1);
      const valid = results.filter((r) => r.valid);
      if (valid.length < results.length) skippedSteps++;
      const terms = valid.map((r) => ({ seed: r.seed, coeff: coefficientFor(r.g, rule) }));
      if (terms.length > 0) {
        if (!fuse) await backend.apply(terms, { factor: decay, ranges: decayRanges });
        await log.append({ round: step, lr, decay, terms });
      }
      for (const r of valid) {
        lossSinceLastPoint += (r.lossPlus + r.lossMinus) / 2 / valid.length;
      }
      if (valid.length > 0) stepsSinceLastPoint++;

      const isEvalStep = heldOut !== undefined && options.evalEvery > 0 && (step + 1) % options.evalEvery === 0;
      if (isEvalStep || (options.syncEvery > 0 && (step + 1) % options.syncEvery === 0)) await log.sync();
      let score: DatasetScore | undefined;
      if (isEvalStep) {
        score = await scoreDataset(backend, heldOut!);
        curve.push({ step: step + 1, trainLoss: lossSinceLastPoint / Math.max(1, stepsSinceLastPoint), eval: score });
        lossSinceLastPoint = 0;
        stepsSinceLastPoint = 0;
        if (score.loss < bestEval - (options.earlyStop?.minDelta ?? 0)) {
          bestEval = score.loss;
          evalsWithoutImprovement = 0;
        } else {
          evalsWithoutImprovement++;
        }
      }
      input.onProgress?.({
        step: step + 1,
        steps: options.steps,
        trainLoss: valid.length > 0 ? valid.reduce((a, r) => a + (r.lossPlus + r.lossMinus) / 2, 0) / valid.length : Number.NaN,
        ...(score ? { eval: score } : {}),
      });
      // A budget with a given σ: stop before the step that would take ε past it.
      if (accountant?.nextRoundExceedsBudget() || (options.earlyStop && evalsWithoutImprovement >= options.earlyStop.patience)) {
        stoppedEarly = true;
        step++;
        break;
      }
    }
  } finally {
    await log.close();
  }

  const finalEval = heldOut ? await scoreDataset(backend, heldOut) : undefined;
  if (finalEval && curve.at(-1)?.step !== step) {
    curve.push({ step, trainLoss: lossSinceLastPoint / Math.max(1, stepsSinceLastPoint), eval: finalEval });
  }
  return {
    steps: step,
    skippedSteps,
    stoppedEarly,
    ...(initialEval ? { initialEval } : {}),
    ...(finalEval ? { finalEval } : {}),
    curve,
    wallMs: performance.now() - started,
    cpuMs: (({ user, system }) => (user + system) / 1000)(process.cpuUsage(cpuStarted)),
    logVersion: log.version,
    ...(accountant ? { recordPrivacy: accountant.spent() } : {}),
    logHeadHash: log.headHash,
    slabSha256: await backend.sha256(),
  };
}
