/**
 * `mezo simulate --trainable / --tensor-scale`: the fleet trains a narrowed, reparametrised default model. Only
 * the selected tensors move (the others are frozen into the graph), a scaled tensor's stored values are W / s,
 * and the log replays onto the same transformed base on an independent replica.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExport } from '../../cli/export-command.js';
import type { LogEntry } from '../../shared/log/index.js';
import { replay } from '../../shared/log/index.js';
import { loadDefaultModel, narrowTrainable, paddingRanges, scaleTrainable, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { runSimulation } from '../../simulation/simulate.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-simulate-subset-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mezo simulate on a subset of the tensors', () => {
  it('trains only the selected tensors, at their scale, and replays bit for bit', async () => {
    let entries: LogEntry[] = [];
    let trained: Float32Array | undefined;
    const options = {
      agents: 8,
      agentsPerRound: 2,
      seedsPerAgent: 4,
      rounds: 6,
      batchSize: 16,
      deadlineMs: 20_000,
      trainable: ['fc1.*', 'fc2.*'],
      tensorScales: [{ pattern: 'fc1.weight', factor: 0.5 }],
      out: join(dir, 'run'),
    };
    const report = await runSimulation(options, {
      onFinished: ({ coordinator }) => {
        entries = [...coordinator.log.entries()];
        trained = coordinator.materialise().slice();
      },
    });
    expect(report.failure).toBeUndefined();
    expect(entries).toHaveLength(6);

    const base = scaleTrainable(narrowTrainable(await loadDefaultModel(), options.trainable), options.tensorScales);
    expect(base.manifest.tensors.map((t) => t.name).sort()).toEqual(['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
    expect(trained).toHaveLength(base.slab.length);
    expect(trained).not.toEqual(base.slab);
    const replayed = base.slab.slice();
    replay(noise, replayed, entries, 'rademacher', { base: base.slab, padding: paddingRanges(base.manifest.tensors, base.slab.length) });
    expect(slabSha256(replayed)).toBe(report.weightsSha256);
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);

    // `mezo export` replays the log onto the same transformed base; without the transform the base differs.
    const log = join(dir, 'run', 'update.log');
    await runExport({ log, out: join(dir, 'trained.onnx'), trainable: options.trainable, tensorScale: options.tensorScales });
    expect(statSync(join(dir, 'trained.onnx')).size).toBeGreaterThan(4 * base.slab.length);
    await expect(runExport({ log, out: join(dir, 'other.onnx'), trainable: options.trainable })).rejects.toThrow(/wrong --model for this log/);
  }, 300_000);

  it('names the option when a pattern selects nothing or a factor is not a power of two', async () => {
    await expect(runSimulation({ agents: 4, agentsPerRound: 2, rounds: 1, trainable: ['conv*'] })).rejects.toThrow(/"conv\*" selects no initializer/);
    await expect(runSimulation({ agents: 4, agentsPerRound: 2, rounds: 1, tensorScales: [{ pattern: 'fc2.*', factor: 0.3 }] })).rejects.toThrow(
      /tensorScales\[0\]\.factor must be a power of two/,
    );
  }, 120_000);
});
