/**
 * `mezo simulate` with the strategy's optimiser options on: seed-space momentum, the loss-jump guard and
 * reduce-on-plateau change what the entries hold, not how they replay. The real coordinator and virtual agents
 * on the default task; the log is replayed here from the base weights, independently of the run.
 */
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../shared/log/index.js';
import { replay } from '../../shared/log/index.js';
import { loadDefaultModel, paddingRanges, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { runSimulation } from '../../simulation/simulate.js';

describe('mezo simulate with momentum, the loss guard and reduce-on-plateau', () => {
  it('logs the momentum and undo terms as plain entries that every replica and an independent replay agree on', async () => {
    let entries: LogEntry[] = [];
    const options = {
      agents: 12,
      agentsPerRound: 3,
      seedsPerAgent: 2,
      rounds: 10,
      batchSize: 16,
      deadlineMs: 20_000,
      momentum: { beta: 0.9, window: 3 },
      // A guard that fires on ordinary noise (threshold 0.1 sd after 3 rounds), so the run holds undo entries.
      lossGuard: { threshold: 0.1, warmup: 3 },
      plateau: { patience: 2, factor: 0.5, minDelta: 0.5 },
    };
    const report = await runSimulation(options, {
      onFinished: ({ coordinator }) => {
        entries = [...coordinator.log.entries()];
      },
    });
    expect(report.failure).toBeUndefined();
    expect(entries).toHaveLength(10);
    // Round 0 has its 6 fresh terms; later rounds also carry earlier rounds' directions (or undo the previous round).
    expect(entries[0]!.terms).toHaveLength(6);
    expect(entries.some((e) => e.terms.length > 6)).toBe(true);
    const undos = entries.filter((e, i) => i > 0 && e.terms.length === entries[i - 1]!.terms.length && e.terms.every((t, k) => t.seed === entries[i - 1]!.terms[k]!.seed));
    expect(undos.length).toBeGreaterThan(0);
    // The plateau rule cut the rate at least once: the logged rate falls below the cosine's.
    expect(entries.some((e, r) => e.lr < 0.5 * 8e-3 * Math.sqrt(6 / 80) * (1 + Math.cos((Math.PI * r) / 10)) * (1 - 1e-9))).toBe(true);

    const prepared = await loadDefaultModel();
    const replayed = prepared.slab.slice();
    replay(noise, replayed, entries, report.options.distribution, { base: prepared.slab, padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length) });
    expect(slabSha256(replayed)).toBe(report.weightsSha256);
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);
    expect(report.audit.agentsAtHead).toBe(report.audit.agents);

    // The same options and seed give the same log, bit for bit.
    const again = await runSimulation(options);
    expect(again.logHeadHash).toBe(report.logHeadHash);
  }, 300_000);
});
