/**
 * Local training with low-rank (LOZO) noise: the trainer's weights equal base + its log replayed with the model's
 * layout, bit for bit, on the thread and on a worker; lazy V keeps the seeds' high word over a window.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepSeeds, trainLocal, type LocalTrainOptionsInput } from '../../../edge-agent/local-trainer.js';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { WorkerBackend } from '../../../edge-agent/worker-backend.js';
import { materialiseAt, readLog } from '../../../coordinator/export-model.js';
import { resolveTrainConfig } from '../../../cli/train-command.js';
import { parseSimulateOptions } from '../../../simulation/simulate.js';
import { LocalDataset, loadMnist } from '../../../shared/data/index.js';
import { UpdateLog, replay } from '../../../shared/log/index.js';
import { paddingRanges, prepareModel, slabSha256, type PreparedModel } from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { lowRankLayoutFromTensors, noise } from '../../../shared/noise/index.js';

let prepared: PreparedModel;
let train: LocalDataset<Float32Array>;
let dir: string;

beforeAll(() => {
  prepared = prepareModel(buildMlp({ sizes: [784, 32, 10], seed: 3 }).bytes, { loss: 'cross-entropy' });
  train = loadMnist().subset(Array.from({ length: 256 }, (_, i) => i), 'train');
  dir = mkdtempSync(join(tmpdir(), 'mezo-lowrank-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options: LocalTrainOptionsInput = {
  steps: 12,
  batchSize: 32,
  perturbations: 3,
  schedule: { kind: 'cosine', lr: 2e-3, totalSteps: 12 },
  distribution: 'lowrank',
  rank: 2,
  vPeriod: 4,
  seed: 11,
};

describe(`local training with low-rank noise (${noise.kind})`, () => {
  it('ends on base + the log replayed with the layout, bit for bit, in process and on a worker', async () => {
    const results = [];
    for (const onWorker of [false, true]) {
      const logPath = join(dir, `update-${onWorker}.log`);
      const backendOptions = { intraOpThreads: 1, distribution: 'lowrank', rank: 2 } as const;
      const backend = onWorker ? await WorkerBackend.start(prepared, backendOptions) : await InProcessBackend.create(prepared, noise, backendOptions);
      try {
        expect(backend.rank).toBe(2);
        const report = await trainLocal({ backend, train, logPath, options });
        expect(report.steps).toBe(12);
        const trained = await backend.snapshot();
        expect(slabSha256(trained)).toBe(report.slabSha256);

        const header = { jobId: 'local', baseSha256: slabSha256(prepared.slab), distribution: 'lowrank' as const, rank: 2, decayRanges: [] };
        const log = await UpdateLog.open(logPath, header);
        const replayed = prepared.slab.slice();
        replay(noise, replayed, log.entries(), log.distribution, {
          lowRank: lowRankLayoutFromTensors(prepared.manifest.tensors, log.rank!),
          padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length),
        });
        await log.close();
        expect(slabSha256(replayed)).toBe(report.slabSha256);
        // Export reads the rank from the header and the layout from the model.
        expect(slabSha256(materialiseAt(prepared, await readLog(logPath), noise))).toBe(report.slabSha256);
        results.push(report.logHeadHash);
      } finally {
        await backend.close();
      }
    }
    expect(results[1]).toBe(results[0]);
  });

  it('moves the weights differently from Gaussian noise with the same seeds', async () => {
    const runs = [];
    for (const noiseOptions of [{ distribution: 'lowrank', rank: 2 }, { distribution: 'gaussian' }] as const) {
      const backend = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1, ...noiseOptions });
      try {
        const { rank: _, vPeriod: __, ...rest } = options;
        runs.push((await trainLocal({ backend, train, options: { ...rest, ...noiseOptions, steps: 2 } })).slabSha256);
      } finally {
        await backend.close();
      }
    }
    expect(runs[0]).not.toBe(runs[1]);
  });

  it('draws seeds that share their high word over a window of vPeriod steps, distinct within a step', () => {
    const windows = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((step) => stepSeeds(11, step, 5, 4));
    const high = (seed: bigint) => seed >> 32n;
    for (const seeds of windows) {
      expect(new Set(seeds).size).toBe(5);
      expect(new Set(seeds.map(high)).size).toBe(1);
    }
    expect(high(windows[3]![0]!)).toBe(high(windows[0]![0]!));
    expect(high(windows[4]![0]!)).toBe(high(windows[7]![0]!));
    expect(high(windows[4]![0]!)).not.toBe(high(windows[3]![0]!));
    expect(high(windows[8]![0]!)).not.toBe(high(windows[4]![0]!));
    // vPeriod 1 is the seeds as they always were.
    expect(stepSeeds(11, 3, 5, 1)).toEqual(stepSeeds(11, 3, 5));
    expect(new Set(stepSeeds(11, 3, 5).map(high)).size).toBe(5);
  });

  it('refuses a rank without lowrank, lowrank without a rank, and a backend of another rank, naming the field', async () => {
    await expect(InProcessBackend.create(prepared, noise, { distribution: 'lowrank' })).rejects.toThrow(/options\.rank must be an integer in \[1, 64\]/);
    await expect(WorkerBackend.start(prepared, { distribution: 'lowrank', rank: 65 })).rejects.toThrow(/options\.rank/);
    await expect(InProcessBackend.create(prepared, noise, { distribution: 'gaussian', rank: 2 })).rejects.toThrow(/options\.rank is only allowed/);
    const backend = await InProcessBackend.create(prepared, noise, { distribution: 'lowrank', rank: 4 });
    try {
      await expect(trainLocal({ backend, train, options: { ...options, rank: 2 } })).rejects.toThrow(/rank is 2 but the backend's is 4/);
      await expect(trainLocal({ backend, train, options: { ...options, rank: undefined } })).rejects.toThrow(/train options\.rank must be/);
    } finally {
      await backend.close();
    }
  });

  it('names --rank in the train and simulate configurations when it is missing or not allowed', () => {
    expect(() => resolveTrainConfig({ distribution: 'lowrank' }, {})).toThrow(/train\.rank.*required with distribution 'lowrank'/);
    expect(() => resolveTrainConfig({ distribution: 'gaussian', rank: 3 }, {})).toThrow(/train\.rank.*only allowed/);
    expect(() => resolveTrainConfig({ distribution: 'lowrank', rank: 99 }, {})).toThrow(/train\.rank/);
    expect(resolveTrainConfig({ distribution: 'lowrank', rank: 4, vPeriod: 20 }, {}).train).toMatchObject({ distribution: 'lowrank', rank: 4, vPeriod: 20 });
    expect(() => parseSimulateOptions({ distribution: 'lowrank' })).toThrow(/simulate: rank: is required/);
    expect(() => parseSimulateOptions({ distribution: 'lowrank', rank: 2, vPeriod: 3, seedMode: 'pool' })).toThrow(/simulate: vPeriod/);
  });
});
