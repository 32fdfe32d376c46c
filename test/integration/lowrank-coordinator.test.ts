/**
 * `mezo coordinator --distribution lowrank --rank 2 --v-period 2` with agents over gRPC: the agents learn the rank
 * from the join answer, and their weights, the coordinator's held-out evaluations and base + the log replayed
 * with the model's layout all agree.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig, runCoordinator } from '../../cli/coordinator-command.js';
import { readRunRecord } from '../../coordinator/run-record.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import type { MezoBackend } from '../../edge-agent/mezo-backend.js';
import { replay, UpdateLog } from '../../shared/log/index.js';
import { paddingRanges, slabSha256 } from '../../shared/model/index.js';
import { lowRankLayoutFromTensors, noise } from '../../shared/noise/index.js';
import { GrpcTransport } from '../../shared/transport/index.js';
import { accuracyOf, fixture, until } from './fleet-fixture.js';
import { captureStderr } from '../helpers/capture-stderr.js';

describe('mezo coordinator with low-rank noise', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-lowrank-coord-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a lowrank job whose log replays, with the layout, to the agents\' weights', async () => {
    const f = await fixture();
    const stderr = captureStderr();
    const agents: Agent[] = [];
    const backends: MezoBackend[] = [];
    const ranks: Array<number | undefined> = [];
    const runs: Array<Promise<void>> = [];
    const logPath = join(dir, 'update.log');
    try {
      const config = resolveCoordinatorConfig(
        { listen: '127.0.0.1:0', log: logPath, rounds: 4, agentsPerRound: 2, seedsPerAgent: 2, batchSize: 16, distribution: 'lowrank', rank: 2, vPeriod: 2, evalEvery: 2, runRecord: join(dir, 'run.json') },
        {},
      );
      expect(config.job).toMatchObject({ distribution: 'lowrank', rank: 2, strategy: { vPeriod: 2 } });
      const running = runCoordinator(config, []);
      await until(() => /listening on (\S+),/.test(stderr.text), 20_000, 'the coordinator to listen');
      const address = /listening on (\S+),/.exec(stderr.text)![1]!;
      for (const i of [0, 1]) {
        const agent = new Agent({
          agentId: `agent-${i}`,
          transport: new GrpcTransport({ address }),
          prepared: f.prepared,
          // As `mezo agent` builds it: the distribution and rank come from the join answer.
          createBackend: async (distribution, rank) => {
            ranks.push(rank);
            const backend = await createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1, ...(rank !== undefined ? { rank } : {}) });
            backends.push(backend);
            return backend;
          },
          data: f.task.agents[i]!,
          dataSeed: i,
          capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
          reconnect: { initialMs: 20, maxMs: 200 },
        });
        agents.push(agent);
        runs.push(agent.run());
      }
      expect(await running).toMatchObject({ roundsRun: 4, version: 4 });

      const header = { jobId: 'mezo-job', baseSha256: f.prepared.manifest.slabSha256, distribution: 'lowrank' as const, rank: 2, decayRanges: [] };
      const log = await UpdateLog.open(logPath, header);
      // Lazy V: each window of 2 rounds shares one high word across all its seeds.
      const highs = log.entries().map((e) => new Set(e.terms.map((t) => t.seed >> 32n)));
      for (const set of highs) expect(set.size).toBe(1);
      expect([...highs[0]!][0]).toBe([...highs[1]!][0]);
      expect([...highs[2]!][0]).not.toBe([...highs[1]!][0]);
      const slab = f.prepared.slab.slice();
      replay(noise, slab, log.entries(), log.distribution, {
        lowRank: lowRankLayoutFromTensors(f.prepared.manifest.tensors, 2),
        padding: paddingRanges(f.prepared.manifest.tensors, f.prepared.slab.length),
      });
      await log.close();
      const expected = slabSha256(slab);
      expect(ranks).toEqual([2, 2]);
      await until(async () => (await Promise.all(backends.map((b) => b.sha256()))).every((sha) => sha === expected), 20_000, 'the agents to reach the head');
      const record = await readRunRecord(join(dir, 'run.json'));
      expect(record.config).toMatchObject({ distribution: 'lowrank', rank: 2, vPeriod: 2 });
      expect(record.evaluations.at(-1)!.accuracy).toBe(await accuracyOf(f, slab));
    } finally {
      stderr.restore();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs);
    }
  });
});
