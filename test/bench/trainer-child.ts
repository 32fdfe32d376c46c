/**
 * One trainer-benchmark configuration in its own process: either inference only (the loss of one batch, over
 * and over) or MeZO training steps on the same batch, so their peak RSS compares like for like. Also times
 * the parts of a step. Forked by trainer-bench.ts.
 */
import { InProcessBackend } from '../../edge-agent/mezo-backend.js';
import { feedsForBatch } from '../../edge-agent/batch-feeds.js';
import { createTrainableSession, loadPrepared } from '../../shared/model/index.js';
import { createNoiseEngine } from '../../shared/noise/index.js';
import { reportToParent } from './harness.js';

export interface TrainerChildConfig {
  mode: 'inference' | 'train';
  preparedDir: string;
  batch: { features: 'float32' | 'int64'; featureShape: number[]; size: number; vocab?: number; classes: number };
  steps: number;
  distribution: 'gaussian' | 'rademacher';
  /** How the weights come back after each perturbation (the backend's option). */
  restore: 'reload' | 'subtract';
  intraOpThreads: number;
  noiseThreads: number;
  /** Record RSS this many times over the run. */
  rssSamples: number;
}

export interface TrainerChildReport {
  maxRssKiB: number;
  /** [step, current RSS in KiB] after warm-up and at even intervals. */
  rssTimeline: Array<[number, number]>;
  /** Median milliseconds: one loss evaluation, one full-slab noise pass, one MeZO step (train mode). */
  forwardMs: number;
  noisePassMs: number;
  stepMs: number;
  /** Median CPU time of one step (user + system, every thread of the process), ms: robust to a loaded machine. */
  stepCpuMs: number;
  noiseKind: string;
  parameters: number;
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(config: TrainerChildConfig): Promise<TrainerChildReport> {
  const prepared = await loadPrepared(config.preparedDir);
  const { size, featureShape, classes } = config.batch;
  const perExample = featureShape.reduce((a, b) => a * b, 1);
  const features =
    config.batch.features === 'float32'
      ? Float32Array.from({ length: size * perExample }, (_, i) => ((i * 7919) % 255) / 255)
      : BigInt64Array.from({ length: size * perExample }, (_, i) => BigInt((i * 7919) % (config.batch.vocab ?? 2)));
  const batch = {
    features,
    labels: BigInt64Array.from({ length: size }, (_, i) => BigInt(i % classes)),
    size,
    shape: [size, ...featureShape],
  };
  const engine = createNoiseEngine();
  engine.setThreads(config.noiseThreads);
  const rssTimeline: Array<[number, number]> = [];
  const every = Math.max(1, Math.floor(config.steps / config.rssSamples));
  const stepTimes: number[] = [];
  const stepCpuTimes: number[] = [];
  const forwardTimes: number[] = [];
  const noiseTimes: number[] = [];
  // RSS is sampled after a full collection (the child runs with --expose-gc): garbage awaiting V8's next major
  // GC makes RSS saw up and down; what survives a collection is what a leak would grow.
  const sampleRss = (step: number): void => {
    (globalThis as { gc?: () => void }).gc?.();
    rssTimeline.push([step, Math.round(process.memoryUsage.rss() / 1024)]);
  };
  const time = async (samples: number[], work: () => Promise<unknown> | unknown): Promise<void> => {
    const started = process.hrtime.bigint();
    await work();
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  };

  if (config.mode === 'inference') {
    const session = await createTrainableSession(prepared, { intraOpThreads: config.intraOpThreads });
    const feeds = feedsForBatch(prepared.manifest, batch);
    for (let step = 0; step < config.steps; step++) {
      // Two losses per step, as a MeZO step evaluates.
      await time(forwardTimes, () => session.run(feeds));
      await time(forwardTimes, () => session.run(feeds));
      if (step % every === 0) sampleRss(step);
    }
    await session.release();
  } else {
    const backend = await InProcessBackend.create(prepared, engine, {
      distribution: config.distribution,
      intraOpThreads: config.intraOpThreads,
      slab: prepared.slab,
      restore: config.restore,
    });
    // Warm up onnxruntime (first runs allocate and pick kernels), then time forwards and noise passes.
    for (let i = 0; i < 10; i++) await backend.run(batch);
    for (let i = 0; i < 30; i++) {
      await time(forwardTimes, () => backend.run(batch));
      await time(noiseTimes, () => engine.perturb(backend.slab, 1n, 0, { distribution: config.distribution }));
    }
    const rule = { lr: 1e-7 };
    for (let step = 0; step < config.steps; step++) {
      const cpu = process.cpuUsage();
      await time(stepTimes, () => backend.evaluate([BigInt(step + 1)], 1e-3, batch, rule));
      const used = process.cpuUsage(cpu);
      stepCpuTimes.push((used.user + used.system) / 1000);
      if (step % every === 0) sampleRss(step);
    }
    await backend.close();
  }
  return {
    maxRssKiB: process.resourceUsage().maxRSS,
    rssTimeline,
    forwardMs: median(forwardTimes),
    noisePassMs: median(noiseTimes),
    stepMs: median(stepTimes),
    stepCpuMs: median(stepCpuTimes),
    noiseKind: `${engine.kind}/${engine.kernel.simd}`,
    parameters: prepared.manifest.parameterCount,
  };
}

reportToParent(main);
