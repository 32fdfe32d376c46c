import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveTrainConfig, runTrain } from '../../../cli/train-command.js';
import { UpdateLog, replay } from '../../../shared/log/index.js';
import { LocalDataset, writeJsonl } from '../../../shared/data/index.js';
import { loadDefaultModel, paddingRanges, slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-train-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`mezo train (${noise.kind})`, () => {
  it('raises the default task\'s target accuracy within a hundred steps, and its log replays to the same weights', async () => {
    // Four perturbations per step instead of the default 32 keep the run short with the TypeScript kernel.
    const config = resolveTrainConfig({ steps: 100, perturbations: 4, lr: 1e-3, evalEvery: 50, out: join(dir, 'default') });
    const { report, files } = await runTrain(config, { quiet: true });
    // The base model scores about 65 % on the distorted test digits (docs/default-model.md); 100 local MeZO
    // steps on the devices' pooled data must win back at least 8 points.
    expect(report.initialEval!.accuracy).toBeLessThan(0.7);
    expect(report.finalEval!.accuracy - report.initialEval!.accuracy).toBeGreaterThan(0.08);
    expect(report.finalEval!.loss).toBeLessThan(report.initialEval!.loss);
    expect(report.curve.map((p) => p.step)).toEqual([0, 50, 100]);
    const saved = JSON.parse(readFileSync(files.report, 'utf8')) as { report: { logHeadHash: string } };
    expect(saved.report.logHeadHash).toBe(report.logHeadHash);

    const base = await loadDefaultModel();
    const trained = new Float32Array(readFileSync(files.slab).buffer.slice(0));
    expect(slabSha256(trained)).toBe(report.slabSha256);
    // The default noise (Rademacher since the forward-estimator defaults; docs/learning.md).
    expect(config.train).toMatchObject({ distribution: 'rademacher', estimator: 'forward' });
    const log = await UpdateLog.open(files.log, { jobId: 'local', baseSha256: base.manifest.slabSha256, distribution: config.train.distribution });
    expect(log.version).toBe(100);
    const replayed = base.slab.slice();
    replay(noise, replayed, log.entries(), log.distribution, { padding: paddingRanges(base.manifest.tensors, base.slab.length) });
    await log.close();
    // Restores reload the canonical weights, so base + log is the trained model, bit for bit.
    expect(slabSha256(replayed)).toBe(report.slabSha256);
  });

  it('trains on a local data file', async () => {
    const features = new Float32Array(64 * 784).map((_, i) => ((i * 7919) % 256) / 255);
    const labels = Int32Array.from({ length: 64 }, (_, i) => i % 10);
    const path = join(dir, 'local.jsonl');
    await writeJsonl(path, new LocalDataset({ features, labels, featureShape: [784], numClasses: 10 }));
    const config = resolveTrainConfig({ steps: 5, data: path, evalEvery: 0, out: join(dir, 'file'), worker: false });
    const { report } = await runTrain(config, { quiet: true });
    expect(report.logVersion).toBe(5);
    expect(report.finalEval).toBeUndefined();
  });

  it('resolves flags over env over file, and names the source of a bad value', () => {
    const env = { MEZO_TRAIN_STEPS: '50', MEZO_TRAIN_LR: '0.002' };
    const config = resolveTrainConfig({ steps: 7, schedule: 'cosine' }, env);
    expect(config.train.steps).toBe(7);
    expect(config.train.schedule).toMatchObject({ kind: 'cosine', lr: 0.002, totalSteps: 7 });
    expect(config.worker).toBe(true);
    expect(() => resolveTrainConfig({ lr: -1 }, {})).toThrow(/config: train\.schedule\.lr: .*\(from --lr\)/);
    // A schedule without --lr decays from the default rate over the run.
    expect(resolveTrainConfig({ schedule: 'cosine' }, {}).train.schedule).toMatchObject({
      kind: 'cosine',
      lr: resolveTrainConfig({}, {}).train.schedule.lr,
      totalSteps: resolveTrainConfig({}, {}).train.steps,
    });
    expect(() => resolveTrainConfig({}, { MEZO_TRAIN_STEPS: '0' })).toThrow(/train\.steps.*\(from MEZO_TRAIN_STEPS\)/);
    expect(() => resolveTrainConfig({ distribution: 'uniform' }, {})).toThrow(/train\.distribution.*\(from --distribution\)/);
  });

  it('rejects a model without data and unknown data formats', async () => {
    await expect(runTrain(resolveTrainConfig({ model: join(dir, 'x'), out: join(dir, 'bad') }, {}), { quiet: true })).rejects.toThrow();
    await expect(
      runTrain(resolveTrainConfig({ data: join(dir, 'data.parquet'), out: join(dir, 'bad2') }, {}), { quiet: true }),
    ).rejects.toThrow(/unknown data format \(expected \.jsonl, \.csv or \.mzds\)/);
  });
});
