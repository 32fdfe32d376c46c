/**
 * Trainer benchmark (issue targets): training peak RSS ≤ 1.05× the peak of evaluating the same loss at the same
 * batch (inference only), no RSS growth over a long run, and step time / (2 × forward time) ≤ 1.3 on the
 * MLP 784-1024-1024-10 at batch 64 with Gaussian noise — with the split of a step into noise, onnxruntime and
 * the rest. Every configuration runs in its own child process.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LocalDataset, writeMzds } from '../../shared/data/index.js';
import { prepareModel, writePrepared } from '../../shared/model/index.js';
import { buildMlp, buildTransformer } from '../../shared/model/zoo/index.js';
import { forkBenchChild, hostInfo, type SuiteResult } from './harness.js';
import type { TrainerChildConfig, TrainerChildReport } from './trainer-child.js';

const CHILD = fileURLToPath(new URL('./trainer-child.js', import.meta.url));
/** The compiled command line, as a user runs it (the suite runs from dist/, like the CLI). */
const CLI = fileURLToPath(new URL('../../cli/mezo.js', import.meta.url));

/**
 * The user's path: `mezo train` on the same prepared model and batch size, with data in an MZDS file, one
 * perturbation per step, one onnxruntime and one noise thread like the kernel step, no evaluations. Steps/s from the command's own report
 * (its training loop, update log included), against the kernel step's steps/s; also both in CPU time per step,
 * which a loaded machine distorts far less than wall time.
 */
async function timeMezoTrain(
  work: string,
  preparedDir: string,
  distribution: 'gaussian' | 'rademacher',
  restore: 'reload' | 'subtract',
  steps: number,
): Promise<{ stepsPerSecond: number; stepCpuMs: number }> {
  const rows = 1024;
  const data = join(work, 'train.mzds');
  await writeMzds(
    data,
    new LocalDataset({
      features: Float32Array.from({ length: rows * 784 }, (_, i) => ((i * 7919) % 255) / 255),
      labels: Int32Array.from({ length: rows }, (_, i) => i % 10),
      featureShape: [784],
      numClasses: 10,
      name: 'bench',
    }),
  );
  const out = join(work, `mezo-train-${distribution}-${restore}`);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI, 'train', '--model', preparedDir, '--data', data, '--out', out, '--steps', String(steps), '--batch-size', '64', '--distribution', distribution,
      '--perturbations', '1', '--restore', restore, '--eval-every', '0', '--threads', '1', '--noise-threads', '1', '--no-worker', '--json'],
    { env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, maxBuffer: 16 << 20 },
  );
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { steps: number; wallMs: number; cpuMs: number };
  return { stepsPerSecond: report.steps / (report.wallMs / 1000), stepCpuMs: report.cpuMs / report.steps };
}

export interface TrainerBenchOptions {
  steps?: number;
  /**
   * Steps of the long runs that check for RSS growth (default 20,000: growth is read over the last 10,000, once
   * onnxruntime's allocator has warmed up; MEZO_BENCH_GROWTH_STEPS overrides).
   */
  growthSteps?: number;
  intraOpThreads?: number;
  noiseThreads?: number;
}

export async function benchTrainer(options: TrainerBenchOptions = {}): Promise<SuiteResult> {
  const steps = options.steps ?? 300;
  const growthSteps = options.growthSteps ?? Number(process.env.MEZO_BENCH_GROWTH_STEPS ?? 20_000);
  const intraOpThreads = options.intraOpThreads ?? 1;
  const noiseThreads = options.noiseThreads ?? 1;
  const work = mkdtempSync(join(tmpdir(), 'mezo-bench-trainer-'));
  const models = [
    {
      name: 'mlp 784-1024-1024-10',
      zoo: buildMlp({ sizes: [784, 1024, 1024, 10], seed: 1 }),
      batch: { features: 'float32' as const, featureShape: [784], size: 64, classes: 10 },
    },
    {
      name: 'transformer v1000 d64 h4 l2 s32',
      zoo: buildTransformer({ vocab: 1000, dim: 64, heads: 4, layers: 2, seq: 32, classes: 2, seed: 1 }),
      batch: { features: 'int64' as const, featureShape: [32], size: 64, classes: 2, vocab: 1000 },
    },
  ];
  const results: Array<Record<string, unknown>> = [];
  const table: SuiteResult['table'] = [];
  const targets: Array<{ target: string; value: number; goal: string; met: boolean }> = [];
  try {
    for (const [index, model] of models.entries()) {
      const preparedDir = await writePrepared(join(work, `prepared-${index}`), prepareModel(model.zoo.bytes, { loss: 'cross-entropy' }));
      const base: Omit<TrainerChildConfig, 'mode' | 'distribution' | 'steps' | 'restore'> = {
        preparedDir,
        batch: model.batch,
        intraOpThreads,
        noiseThreads,
        rssSamples: 10,
      };
      const inference = await forkBenchChild<TrainerChildConfig, TrainerChildReport>(CHILD, {
        ...base,
        mode: 'inference',
        distribution: 'gaussian',
        restore: 'subtract',
        steps,
      });
      const variants = [
        { distribution: 'gaussian', restore: 'subtract' },
        { distribution: 'gaussian', restore: 'reload' },
        { distribution: 'rademacher', restore: 'subtract' },
      ] as const;
      for (const { distribution, restore } of variants) {
        const train = await forkBenchChild<TrainerChildConfig, TrainerChildReport>(CHILD, { ...base, mode: 'train', distribution, restore, steps });
        const memoryRatio = train.maxRssKiB / inference.maxRssKiB;
        const speedRatio = train.stepMs / (2 * train.forwardMs);
        // Three noise passes per step either way (+εz, −2εz, and the update — fused into the restore when
        // subtracting); reload adds a copy from the checkpoint and one back, which land in "other".
        const noiseShare = Math.min(1, (3 * train.noisePassMs) / train.stepMs);
        const ortShare = Math.min(1, (2 * train.forwardMs) / train.stepMs);
        results.push({ model: model.name, distribution, restore, parameters: train.parameters, inference, train, memoryRatio, speedRatio, noiseShare, ortShare });
        table.push({
          model: model.name,
          noise: `${distribution}, ${restore} (${train.noiseKind})`,
          'step ms': train.stepMs,
          'forward ms': train.forwardMs,
          'noise pass ms': train.noisePassMs,
          'step/(2·fwd)': speedRatio,
          'noise %': 100 * noiseShare,
          'ort %': 100 * ortShare,
          'other %': 100 * Math.max(0, 1 - noiseShare - ortShare),
          'train/infer RSS': memoryRatio,
          'train RSS MiB': train.maxRssKiB / 1024,
        });
        if (index === 0 && distribution === 'gaussian') {
          targets.push({ target: `MLP gaussian (${restore}) step / (2 × forward)`, value: speedRatio, goal: '<= 1.3', met: speedRatio <= 1.3 });
        }
        if (index === 0 && restore === 'subtract') {
          // The same step through `mezo train`: data pipeline, update log (group commit) and report included.
          const cli = await timeMezoTrain(work, preparedDir, distribution, restore, Math.max(steps, 1000));
          const kernelStepsPerSecond = 1000 / train.stepMs;
          const userRatio = cli.stepsPerSecond / kernelStepsPerSecond;
          const cpuRatio = train.stepCpuMs / cli.stepCpuMs;
          results.push({
            model: model.name,
            distribution,
            restore,
            mezoTrain: { stepsPerSecond: cli.stepsPerSecond, kernelStepsPerSecond, ratio: userRatio, stepCpuMs: cli.stepCpuMs, kernelStepCpuMs: train.stepCpuMs, cpuRatio },
          });
          table.push({
            model: model.name,
            noise: `${distribution}, ${restore}: mezo train`,
            'step ms': 1000 / cli.stepsPerSecond,
            'step/(2·fwd)': `${cli.stepsPerSecond.toFixed(0)} steps/s = ${userRatio.toFixed(2)} × kernel`,
            'other %': `CPU/step ${cli.stepCpuMs.toFixed(2)} ms vs ${train.stepCpuMs.toFixed(2)} ms = ${cpuRatio.toFixed(2)}`,
          });
          targets.push({ target: `MLP ${distribution} (${restore}): mezo train steps/s / kernel steps/s`, value: userRatio, goal: '>= 0.8', met: userRatio >= 0.8 });
          targets.push({ target: `MLP ${distribution} (${restore}): the same in CPU time per step`, value: cpuRatio, goal: '>= 0.8', met: cpuRatio >= 0.8 });
        }
        targets.push({
          target: `${model.name} ${distribution} (${restore}): training peak RSS / inference peak RSS`,
          value: memoryRatio,
          goal: '<= 1.05',
          met: memoryRatio <= 1.05,
        });
      }
    }
    if (growthSteps > 0) {
      // A long run of training steps and one of inference (two loss evaluations per step, the same forward
      // passes), each in its own process. onnxruntime's allocator grows RSS in steps over its first ~10^4 runs
      // and then plateaus, inference alone included; after that, training must not grow at all.
      const model = models[0]!;
      const longRun = (mode: 'inference' | 'train') =>
        forkBenchChild<TrainerChildConfig, TrainerChildReport>(CHILD, {
          preparedDir: join(work, 'prepared-0'),
          batch: model.batch,
          intraOpThreads,
          noiseThreads,
          rssSamples: 20,
          mode,
          distribution: 'gaussian',
          restore: 'reload',
          steps: growthSteps,
        });
      // Growth over the second half of each run, after warm-up allocations (JIT, heap, allocator) have settled.
      const growth = (report: TrainerChildReport): number =>
        (report.rssTimeline.at(-1)![1] - report.rssTimeline[Math.floor(report.rssTimeline.length / 2)]![1]) / 1024;
      const train = await longRun('train');
      const inference = await longRun('inference');
      const excess = growth(train) - growth(inference);
      results.push({
        model: model.name,
        longRun: {
          steps: growthSteps,
          train: { rssTimelineKiB: train.rssTimeline, growthMiB: growth(train), maxRssKiB: train.maxRssKiB },
          inference: { rssTimelineKiB: inference.rssTimeline, growthMiB: growth(inference), maxRssKiB: inference.maxRssKiB },
          trainingExcessGrowthMiB: excess,
        },
      });
      table.push({
        model: `${model.name}, ${growthSteps} steps`,
        noise: 'RSS, second half',
        'step ms': `train +${growth(train).toFixed(1)} MiB`,
        'forward ms': `infer +${growth(inference).toFixed(1)} MiB`,
      });
      targets.push({
        target: `training RSS growth over steps ${growthSteps / 2}–${growthSteps} (MiB, MLP; inference: ${growth(inference).toFixed(1)})`,
        value: growth(train),
        goal: '< 2 MiB',
        met: growth(train) < 2,
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const t of targets) table.push({ model: `TARGET ${t.target}`, noise: t.goal, 'step ms': `${t.value.toFixed(3)} ${t.met ? 'met' : 'MISSED'}` });
  return {
    suite: 'trainer',
    date: new Date().toISOString(),
    host: hostInfo(),
    steps,
    batch: 64,
    intraOpThreads,
    noiseThreads,
    results,
    targets,
    table,
  };
}
