/**
 * `mezo simulate` with the forward estimator: agents run one forward pass per seed and send the task's mean
 * as lossMinus; the coordinator checks every g against the losses, and the log replays like any other.
 */
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../shared/log/index.js';
import { replay } from '../../shared/log/index.js';
import { loadDefaultModel, paddingRanges, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { runSimulation } from '../../simulation/simulate.js';

describe('mezo simulate with the forward estimator', () => {
  it('accepts every answer, learns, and logs entries that an independent replay agrees with', async () => {
    let entries: LogEntry[] = [];
    const options = {
      agents: 12,
      agentsPerRound: 3,
      seedsPerAgent: 4,
      rounds: 12,
      batchSize: 16,
      deadlineMs: 20_000,
      estimator: 'forward' as const,
      distribution: 'rademacher' as const,
    };
    const report = await runSimulation(options, {
      onFinished: ({ coordinator }) => {
        entries = [...coordinator.log.entries()];
      },
    });
    expect(report.failure).toBeUndefined();
    expect(report.results.accepted).toBe(12 * 3);
    expect(report.results.rejected).toBe(0);
    expect(entries).toHaveLength(12);
    expect(entries.every((e) => e.terms.length === 12)).toBe(true);
    expect(report.lossAfter).toBeLessThan(report.lossBefore);

    const prepared = await loadDefaultModel();
    const replayed = prepared.slab.slice();
    replay(noise, replayed, entries, 'rademacher', { base: prepared.slab, padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length) });
    expect(slabSha256(replayed)).toBe(report.weightsSha256);
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);
    expect(report.audit.agentsAtHead).toBe(report.audit.agents);
  }, 300_000);

  it('refuses the forward estimator with one seed per agent or with record-level DP, naming the field', async () => {
    await expect(runSimulation({ agents: 4, agentsPerRound: 2, seedsPerAgent: 1, rounds: 1, estimator: 'forward' })).rejects.toThrow(/estimator.*seedsPerAgent ≥ 2/);
    await expect(
      runSimulation({ agents: 4, agentsPerRound: 2, seedsPerAgent: 2, rounds: 1, estimator: 'forward', recordDp: { clip: 1, noiseMultiplier: 1 } }),
    ).rejects.toThrow(/estimator.*'central'/);
  }, 120_000);
});
