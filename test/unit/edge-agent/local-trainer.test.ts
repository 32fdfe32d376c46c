import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainLocal, type LocalTrainOptionsInput } from '../../../edge-agent/local-trainer.js';
import { LocalDataset, loadMnist } from '../../../shared/data/index.js';
import { UpdateLog, replay } from '../../../shared/log/index.js';
import { paddingRanges, prepareModel, slabSha256, type PreparedModel } from '../../../shared/model/index.js';
import { InProcessBackend, type RestoreMode } from '../../../edge-agent/mezo-backend.js';
import { WorkerBackend } from '../../../edge-agent/worker-backend.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { noise } from '../../../shared/noise/index.js';
import { float32Ulp } from '../../../shared/noise/drift.js';

let prepared: PreparedModel;
let train: LocalDataset<Float32Array>;
let heldOut: LocalDataset<Float32Array>;
let dir: string;

beforeAll(() => {
  prepared = prepareModel(buildMlp({ sizes: [784, 32, 10], seed: 3 }).bytes, { loss: 'cross-entropy' });
  const mnist = loadMnist();
  train = mnist.subset(Array.from({ length: 512 }, (_, i) => i), 'train');
  heldOut = mnist.subset(Array.from({ length: 256 }, (_, i) => 9000 + i), 'held-out');
  dir = mkdtempSync(join(tmpdir(), 'mezo-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options: LocalTrainOptionsInput = {
  steps: 30,
  batchSize: 32,
  epsilon: 1e-3,
  schedule: { kind: 'constant', lr: 2e-3 },
  seed: 42,
  evalEvery: 10,
};

async function run(extra: Partial<LocalTrainOptionsInput> = {}, logPath?: string, onWorker = false, restore: RestoreMode = 'reload') {
  const backendOptions = { intraOpThreads: 1, distribution: extra.distribution ?? 'gaussian', restore } as const;
  const backend = onWorker
    ? await WorkerBackend.start(prepared, backendOptions)
    : await InProcessBackend.create(prepared, noise, backendOptions);
  try {
    const report = await trainLocal({
      backend,
      train,
      heldOut,
      ...(logPath ? { logPath } : {}),
      options: { ...options, ...extra },
    });
    return { report, slab: await backend.snapshot() };
  } finally {
    await backend.close();
  }
}

describe(`local MeZO training (${noise.kind})`, () => {
  it('is deterministic: the same seed and data give the same log and the same weights', async () => {
    const a = await run();
    const b = await run();
    expect(a.report.steps).toBe(30);
    expect(a.report.logVersion).toBe(30);
    expect(b.report.logHeadHash).toBe(a.report.logHeadHash);
    expect(b.report.slabSha256).toBe(a.report.slabSha256);
    expect(a.report.slabSha256).not.toBe(slabSha256(prepared.slab));
    const c = await run({ seed: 43 });
    expect(c.report.logHeadHash).not.toBe(a.report.logHeadHash);
    // The same run with the model on a worker thread: the same bits.
    const d = await run({}, undefined, true);
    expect(d.report.logHeadHash).toBe(a.report.logHeadHash);
    expect(d.report.slabSha256).toBe(a.report.slabSha256);
    const rademacher = await run({ distribution: 'rademacher' });
    expect(rademacher.report.logVersion).toBe(30);
    expect(a.report.curve.map((p) => p.step)).toEqual([0, 10, 20, 30]);
  });

  it('saves a log whose replay onto the base reproduces the trained weights bit for bit (restore by reload)', async () => {
    const logPath = join(dir, 'exact.log');
    const { report, slab } = await run({}, logPath);
    const log = await UpdateLog.open(logPath, { jobId: 'local', baseSha256: slabSha256(prepared.slab), distribution: 'gaussian' });
    const replayed = prepared.slab.slice();
    const padding = paddingRanges(prepared.manifest.tensors, prepared.slab.length);
    replay(noise, replayed, log.entries(), log.distribution, { padding });
    await log.close();
    expect(slabSha256(replayed)).toBe(report.slabSha256);
    expect(slabSha256(slab)).toBe(report.slabSha256);
    // The same with q = 2 perturbations per step and weight decay (updates applied after the restores).
    const decayed = await run({ perturbations: 2, weightDecay: 0.1, schedule: { kind: 'constant', lr: 0.01 }, steps: 8, evalEvery: 0 }, join(dir, 'exact-q2.log'));
    const ranges = prepared.manifest.tensors.filter((t) => t.shape.length >= 2).map((t) => [t.offset, t.offset + t.length] as [number, number]);
    const log2 = await UpdateLog.open(join(dir, 'exact-q2.log'), { jobId: 'local', baseSha256: slabSha256(prepared.slab), distribution: 'gaussian', decayRanges: ranges });
    const replayed2 = prepared.slab.slice();
    replay(noise, replayed2, log2.entries(), log2.distribution, { decayRanges: ranges, padding });
    await log2.close();
    expect(slabSha256(replayed2)).toBe(decayed.report.slabSha256);
  });

  it('with restore by subtraction, replay matches the trained weights within the float32 restore drift', async () => {
    const logPath = join(dir, 'replay.log');
    const { report, slab } = await run({}, logPath, false, 'subtract');
    const log = await UpdateLog.open(logPath, {
      jobId: 'local',
      baseSha256: slabSha256(prepared.slab),
      distribution: 'gaussian',
    });
    expect(log.version).toBe(report.logVersion);
    expect(log.headHash).toBe(report.logHeadHash);
    const replayed = prepared.slab.slice();
    replay(noise, replayed, log.entries(), log.distribution, { padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length) });
    const largestStep = Math.max(...log.entries().flatMap((e) => e.terms.map((t) => Math.abs(t.coeff)))) + 1e-3;
    await log.close();
    // Each step's perturb/restore passes may round an element differently from the canonical single update, by
    // at most an ulp of the largest value involved: the weight or the move (ε + |coeff|)·|z|, |z| ≤ 5.8. Over 30
    // steps that is a random walk of such ulps; the bound allows 4·√steps of them.
    let worstUlps = 0;
    for (let i = 0; i < slab.length; i++) {
      const ulp = float32Ulp(Math.max(Math.abs(slab[i]!), Math.abs(replayed[i]!), 2 * 5.8 * largestStep));
      worstUlps = Math.max(worstUlps, Math.abs(slab[i]! - replayed[i]!) / ulp);
    }
    expect(worstUlps).toBeGreaterThan(0);
    expect(slabSha256(replayed)).not.toBe(report.slabSha256);
    expect(worstUlps).toBeLessThanOrEqual(4 * Math.sqrt(30));
  });

  it('applies weight decay through the log, skipping rank-1 tensors, and replays it', async () => {
    const logPath = join(dir, 'decay.log');
    const { report } = await run({ weightDecay: 0.5, schedule: { kind: 'constant', lr: 0.05 }, steps: 5, evalEvery: 0 }, logPath);
    const ranges = prepared.manifest.tensors.filter((t) => t.shape.length >= 2).map((t) => [t.offset, t.offset + t.length] as [number, number]);
    const log = await UpdateLog.open(logPath, {
      jobId: 'local',
      baseSha256: slabSha256(prepared.slab),
      distribution: 'gaussian',
      decayRanges: ranges,
    });
    expect(log.entries().every((e) => e.decay === Math.fround(1 - 0.05 * 0.5))).toBe(true);
    expect(log.version).toBe(report.logVersion);
    await log.close();
  });

  it('stops early when the held-out loss stops improving', async () => {
    // No improvement can reach minDelta = 10: the evaluation at step 2 sets the best, those at steps 4, 6 and 8
    // miss it, and the third miss (patience 3) stops the run after step 8.
    const { report } = await run({ steps: 50, evalEvery: 2, earlyStop: { patience: 3, minDelta: 10 } });
    expect(report.stoppedEarly).toBe(true);
    expect(report.steps).toBe(8);
    expect(report.logVersion).toBe(8);
    const full = await run({ steps: 12, evalEvery: 2, earlyStop: { patience: 100, minDelta: 0 } });
    expect(full.report.stoppedEarly).toBe(false);
    expect(full.report.steps).toBe(12);
  });

  it('skips steps whose loss is not finite and never applies them', async () => {
    const features = new Float32Array(64 * 784).fill(Number.NaN);
    const poisoned = new LocalDataset({ features, labels: new Int32Array(64), featureShape: [784], numClasses: 10, name: 'nan' });
    const backend = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1 });
    const report = await trainLocal({ backend, train: poisoned, options: { ...options, steps: 4, evalEvery: 0 } });
    expect(report.skippedSteps).toBe(4);
    expect(report.logVersion).toBe(0);
    await backend.close();
  });

  it('rejects data that does not match the model, and bad options, naming the problem', async () => {
    const backend = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1 });
    const narrow = new LocalDataset({ features: new Float32Array(8 * 100), labels: new Int32Array(8), featureShape: [100], numClasses: 10 });
    await expect(trainLocal({ backend, train: narrow, options })).rejects.toThrow(
      /data examples have shape \[100\] \(100 values\) but model input input is \[batch, 784\]/,
    );
    await expect(trainLocal({ backend, train, options: { ...options, steps: 0 } })).rejects.toThrow(
      /train options: steps/,
    );
    await expect(
      trainLocal({ backend, train, options: { ...options, schedule: { kind: 'cosine', lr: 1 } } }),
    ).rejects.toThrow(/schedule\.totalSteps: totalSteps is required/);
    await expect(trainLocal({ backend, train, options: { ...options, distribution: 'rademacher' } })).rejects.toThrow(
      /distribution is 'rademacher' but the backend perturbs with 'gaussian'/,
    );
    expect(await backend.sha256()).toBe(slabSha256(prepared.slab));
    await backend.close();
  });
});
