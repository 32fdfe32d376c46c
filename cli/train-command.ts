/**
 * `mezo train`: local, centralised MeZO fine-tuning of a prepared model on local data — by default the embedded
 * default model on every simulated device's distorted digits, pooled. Writes the update log (the coordinator's
 * format), the trained slab and a JSON report into --out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { localTrainOptionsSchema, type LocalTrainReport } from '../edge-agent/local-trainer.js';
import { lrScheduleWithDefault } from '../shared/optim/lr-schedule.js';
import { distributionSchema, refinePerturbation } from '../shared/optim/perturbation.js';
import { estimatorSchema } from '../shared/optim/estimator.js';
import { configFlag, defineCommandOptions } from './command-options.js';
import { formatRecordPrivacy } from '../shared/privacy/record-dp.js';
import type { Manifest } from '../shared/model/index.js';

// Measured on the default task (docs/learning.md): q = 32 perturbations per step, one forward pass each (the
// forward estimator) with Rademacher noise, average out the noise of single directions and bear a larger rate
// for less work than q = 16 central differences; the cosine decay ends the run on small steps.
const DEFAULT_STEPS = 2000;
const DEFAULT_PERTURBATIONS = 32;
const DEFAULT_LR = 4.5e-3;
const DEFAULT_SCHEDULE = 'cosine';

export const trainConfigSchema = z.strictObject({
  /** Prepared model directory (manifest.json, model.onnx, base.slab); default: the embedded default model. */
  model: z.string().min(1).optional(),
  /** Training data file (.jsonl, .csv or .mzds); default: the default task's device data. */
  data: z.string().min(1).optional(),
  /** Held-out data file; default: the default task's shifted test set (or none with --data). */
  heldOut: z.string().min(1).optional(),
  /** Default task only: how many simulated devices' data to pool. */
  agents: z.number().int().min(1).max(4500).default(10),
  out: z.string().min(1).default('mezo-train'),
  /** Run the model on a worker thread (default) or on the main thread. */
  worker: z.boolean().default(true),
  /** onnxruntime intra-op threads (default 1: one core for the model). */
  threads: z.number().int().min(1).max(256).default(1),
  /**
   * Native noise threads. Noise passes and forward passes never overlap, so the noise may use every core
   * (default: all of them, at most 4); the bits do not depend on it. Slabs under 2^20 values use one thread.
   */
  noiseThreads: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(() => Math.min(4, availableParallelism())),
  /**
   * 'reload' (default): restore the weights after each perturbation from the canonical copy on disk
   * (out/trained.slab), so base + update log is the trained model bit for bit. 'subtract': add εz back — no
   * copy, faster, but the weights drift from base + log by last-bit roundings (docs/training.md).
   */
  restore: z.enum(['reload', 'subtract']).default('reload'),
  train: z
    .preprocess(
      // The schedule is a cosine decay unless told otherwise; a linear or cosine one decays over the whole run
      // unless totalSteps says otherwise.
      (value) => {
        if (value === null || typeof value !== 'object') return value;
        const train = value as { steps?: unknown; schedule?: { kind?: unknown; totalSteps?: unknown } };
        if (train.schedule !== undefined && (train.schedule === null || typeof train.schedule !== 'object')) return value;
        const schedule = { ...train.schedule, kind: train.schedule?.kind ?? DEFAULT_SCHEDULE };
        if (schedule.kind !== 'constant' && schedule.totalSteps === undefined) schedule.totalSteps = train.steps ?? DEFAULT_STEPS;
        return { ...train, schedule };
      },
      localTrainOptionsSchema.extend({
        steps: z.number().int().positive().default(DEFAULT_STEPS),
        schedule: lrScheduleWithDefault(DEFAULT_LR),
        perturbations: z.number().int().min(1).max(256).default(DEFAULT_PERTURBATIONS),
        distribution: distributionSchema.default('rademacher'),
        /** Default: 'forward' with two perturbations or more per step and no record-level DP, else 'central'. */
        estimator: estimatorSchema.optional(),
        evalEvery: z.number().int().nonnegative().default(250),
      })
        .superRefine(refinePerturbation)
        .transform((t) => ({ ...t, estimator: t.estimator ?? (t.perturbations >= 2 && t.recordDp === undefined ? 'forward' : 'central') })),
    )
    .prefault({}),
});
export type TrainConfig = z.output<typeof trainConfigSchema>;

/**
 * Every flag of `mezo train`, in --help order: its config key and help (cli/command-options.ts derives the flag's
 * spelling, its MEZO_TRAIN_* variable and its parser from these and the schema).
 */
export const trainOptions = defineCommandOptions(trainConfigSchema, 'MEZO_TRAIN', {
  config: configFlag('MEZO_TRAIN'),
  model: { key: 'model', arg: '<dir>', help: 'prepared model directory (default: the embedded default model)' },
  data: { key: 'data', arg: '<file>', help: 'training data: .jsonl, .csv or .mzds (default: the default task)' },
  heldOut: { key: 'heldOut', arg: '<file>', help: 'held-out data for evaluation' },
  agents: { key: 'agents', help: 'default task: number of simulated devices whose data is pooled' },
  out: { key: 'out', arg: '<dir>', help: 'output directory: update.log, trained.slab, report.json' },
  steps: { key: 'train.steps', help: `MeZO steps (default ${DEFAULT_STEPS})` },
  batchSize: { key: 'train.batchSize', help: 'examples per step' },
  epsilon: { key: 'train.epsilon', arg: '<x>', help: 'perturbation size ε' },
  lr: { key: 'train.schedule.lr', arg: '<x>', help: `peak learning rate (default ${DEFAULT_LR})` },
  schedule: { key: 'train.schedule.kind', arg: '<kind>', help: `constant | linear | cosine (default ${DEFAULT_SCHEDULE}, decaying over the run)` },
  minLr: { key: 'train.schedule.minLr', arg: '<x>', help: 'final learning rate of linear/cosine' },
  warmupSteps: { key: 'train.schedule.warmupSteps', help: 'linear warm-up steps' },
  perturbations: { key: 'train.perturbations', arg: '<q>', help: `perturbations per step (default ${DEFAULT_PERTURBATIONS})` },
  distribution: { key: 'train.distribution', arg: '<kind>', help: 'gaussian | rademacher | lowrank (LOZO: rank-r noise on weight matrices); default rademacher' },
  estimator: { key: 'train.estimator', arg: '<kind>', help: "central | forward: two forward passes per perturbation, or one centred on the step's mean (default forward with 2 or more; docs/learning.md)" },
  rank: { key: 'train.rank', arg: '<r>', help: 'lowrank: the rank r of each matrix perturbation, 1–64' },
  vPeriod: { key: 'train.vPeriod', help: "lowrank: steps that share V (the seeds' high word); 1 draws every seed afresh" },
  clip: { key: 'train.clip', arg: '<x>', help: 'clip |g| to this bound' },
  dpRecordClip: {
    key: 'train.recordDp.clip',
    arg: '<x>',
    help: "record-level DP: clip each example's projected gradient (over a step's perturbations, L2) to this (docs/privacy.md)",
  },
  dpRecordNoiseMultiplier: { key: 'train.recordDp.noiseMultiplier', arg: '<x>', help: "record-level DP: noise standard deviation on each step's sum, in units of the clip" },
  dpRecordEpsilon: {
    key: 'train.recordDp.epsilon',
    arg: '<x>',
    help: 'record-level DP: the ε budget for the training data (derives the noise multiplier when none is given)',
  },
  dpRecordDelta: { key: 'train.recordDp.delta', arg: '<x>', help: 'record-level DP: δ (default 1e-5)' },
  weightDecay: { key: 'train.weightDecay', arg: '<x>', help: 'decoupled weight decay on weight matrices' },
  evalEvery: { key: 'train.evalEvery', help: 'evaluate on held-out data every n steps (0: only at the end)' },
  patience: { key: 'train.earlyStop.patience', help: 'early stop after n evaluations without improvement' },
  minDelta: { key: 'train.earlyStop.minDelta', arg: '<x>', help: 'improvement that counts for early stopping' },
  seed: { key: 'train.seed', arg: '<n>', help: 'seed of perturbations, batch order and the default task' },
  jobId: { key: 'train.jobId', arg: '<id>', help: 'job id recorded in the update log' },
  threads: { key: 'threads', help: 'onnxruntime intra-op threads' },
  noiseThreads: { key: 'noiseThreads', help: 'native noise threads' },
  restore: { key: 'restore', arg: '<mode>', help: 'reload (exact: canonical weights kept on disk) | subtract (no copy, last-bit drift)' },
  worker: { key: 'worker', negate: true, help: 'run the model on the main thread' },
  json: { help: 'print the report as JSON on stdout' },
});

/** Resolves the configuration from defaults, --config, MEZO_TRAIN_* and flags. */
export function resolveTrainConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TrainConfig {
  return trainOptions.resolve(flags, env);
}

export interface TrainOutcome {
  config: TrainConfig;
  report: LocalTrainReport;
  files: { log: string; slab: string; report: string };
}

/** Reads a data file the way the model reads its input: token ids for an int64 input, floats otherwise. */
async function loadDataFile(path: string, manifest: Manifest) {
  const { readDatasetFile, featureDtypeForInput } = await import('../shared/data/index.js');
  const dtype = featureDtypeForInput(manifest.dataInputs[0]?.elemType);
  return readDatasetFile(path, manifest.classes === null ? { dtype } : { numClasses: manifest.classes, dtype });
}

export async function runTrain(config: TrainConfig, options: { quiet?: boolean } = {}): Promise<TrainOutcome> {
  const { loadPrepared, loadDefaultModel, defaultTask, slabSha256 } = await import('../shared/model/index.js');
  const { concatDatasets } = await import('../shared/data/index.js');
  const { createNoiseEngine } = await import('../shared/noise/index.js');
  const { InProcessBackend } = await import('../edge-agent/mezo-backend.js');
  const { WorkerBackend } = await import('../edge-agent/worker-backend.js');
  const { trainLocal } = await import('../edge-agent/local-trainer.js');
  const { createProgress } = await import('../shared/progress.js');

  const prepared = config.model ? await loadPrepared(config.model) : await loadDefaultModel();
  let train;
  let heldOut;
  if (config.data) {
    train = await loadDataFile(config.data, prepared.manifest);
    heldOut = config.heldOut ? await loadDataFile(config.heldOut, prepared.manifest) : undefined;
  } else {
    if (config.model) throw new InvalidArgumentError('--data is required with --model (the default task fits the default model only)');
    const task = defaultTask({ numAgents: config.agents, seed: config.train.seed });
    train = concatDatasets(task.agents, 'default-digits/devices');
    heldOut = config.heldOut ? await loadDataFile(config.heldOut, prepared.manifest) : task.shiftedTest;
  }

  mkdirSync(config.out, { recursive: true });
  const files = { log: join(config.out, 'update.log'), slab: join(config.out, 'trained.slab'), report: join(config.out, 'report.json') };
  const backendOptions = {
    distribution: config.train.distribution,
    ...(config.train.rank !== undefined ? { rank: config.train.rank } : {}),
    intraOpThreads: config.threads,
    restore: config.restore,
    // The canonical weights are kept in the output's slab file, which is the trained model at every step.
    ...(config.restore === 'reload' ? { checkpointPath: files.slab } : {}),
  };
  const backend = config.worker
    ? await WorkerBackend.start(prepared, { ...backendOptions, noiseThreads: config.noiseThreads })
    : await InProcessBackend.create(prepared, (() => {
        const engine = createNoiseEngine();
        engine.setThreads(config.noiseThreads);
        return engine;
      })(), backendOptions);
  const progress = options.quiet ? undefined : createProgress({ label: 'train', total: config.train.steps });
  let lastAccuracy = '';
  let report: LocalTrainReport;
  try {
    report = await trainLocal({
      backend,
      train,
      ...(heldOut ? { heldOut } : {}),
      logPath: files.log,
      options: config.train,
      onProgress: (p) => {
        if (p.eval) lastAccuracy = `${(p.eval.accuracy * 100).toFixed(1)}%`;
        progress?.update(p.step, { loss: p.trainLoss.toFixed(4), ...(lastAccuracy ? { 'held-out acc': lastAccuracy } : {}) });
      },
    });
    const slab = await backend.snapshot();
    writeFileSync(files.slab, new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength));
    if (slabSha256(slab) !== report.slabSha256) throw new Error('trained slab changed while being written');
  } finally {
    progress?.stop();
    await backend.close();
  }
  writeFileSync(files.report, `${JSON.stringify({ config, report, files }, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  return { config, report, files };
}

export function registerTrainCommand(program: Command): void {
  trainOptions
    .register(program.command('train'))
    .description('fine-tune a prepared model locally with MeZO (default: the embedded default model and task)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveTrainConfig(flags);
      const { report, files } = await runTrain(config);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      const pct = (x: number | undefined): string => (x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);
      const lines = [
        ['steps', `${report.steps}${report.stoppedEarly ? ' (stopped early)' : ''}, ${report.skippedSteps} skipped`],
        ['wall time', `${(report.wallMs / 1000).toFixed(1)} s`],
        ['held-out accuracy', `${pct(report.initialEval?.accuracy)} → ${pct(report.finalEval?.accuracy)}`],
        ['held-out loss', `${report.initialEval?.loss.toFixed(4) ?? 'n/a'} → ${report.finalEval?.loss.toFixed(4) ?? 'n/a'}`],
        ...(report.recordPrivacy ? [['record privacy', formatRecordPrivacy(report.recordPrivacy).replace(/ per agent's data \(\d+ examples\)/, ` for the ${report.recordPrivacy.shardSize} training examples`).replace(/rounds/, 'steps')]] : []),
        ['update log', `${files.log} (${report.logVersion} entries, head ${report.logHeadHash.slice(0, 16)}…)`],
        ['trained slab', `${files.slab} (sha256 ${report.slabSha256.slice(0, 16)}…)`],
        ['report', files.report],
      ];
      for (const [key, value] of lines) process.stdout.write(`${key!.padEnd(18)} ${value}\n`);
    });
}
