/**
 * The embedding example (docs/embedding.md) runs as a user's program would: `node examples/embed.mjs`, importing
 * the built package through its own export names (mezo-fleet/coordinator, /agent, ...) and starting the
 * coordinator and agents with the library entry points createCoordinator and startAgent. It must complete its
 * rounds, its handle's metrics must count them, its health must be SERVING while it runs and NOT_SERVING once
 * closed, and the weights it reports for the coordinator and every agent must equal base + replay of the log
 * file it wrote, replayed here independently of the example.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { LogVerifier, UpdateLog, replay } from '../../shared/log/index.js';
import { loadDefaultModel, paddingRanges, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'mezo-embedding-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it.each([['in memory', []], ['over gRPC on loopback', ['--grpc']]])('the embedding example %s completes its rounds with every replica equal to base + log replay', async (name, flags) => {
  const logPath = join(dir, `${name.replace(/\W+/g, '-')}.log`);
  // The example resolves mezo-fleet/... through package.json's exports, so it runs from the package root.
  const { stdout } = await run(process.execPath, ['examples/embed.mjs', ...flags, logPath], { cwd: process.cwd(), env: process.env, timeout: 120_000 });
  const lines = stdout.trim().split('\n');
  // One line per round from the custom strategy, then the result.
  expect(lines.filter((l) => /^round \d+: 3 results, .* damped ×0\.5$/.test(l))).toHaveLength(5);
  const result = JSON.parse(lines.at(-1)!) as {
    publicKey: string;
    roundsRun: number;
    version: number;
    headHash: string;
    roundsMetric: number;
    health: { serving: string; closed: string };
    coordinator: string;
    agents: string[];
  };
  expect(result).toMatchObject({ roundsRun: 5, version: 5, roundsMetric: 5, health: { serving: 'SERVING', closed: 'NOT_SERVING' } });
  expect(result.agents).toHaveLength(3);

  const prepared = await loadDefaultModel();
  const header = { jobId: 'embedded', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian' as const, decayRanges: [] };
  // Reopen the file, every record checked against the key the example signed with, and replay it on a fresh
  // copy of the base.
  const log = await UpdateLog.open(logPath, header, { verifier: LogVerifier.for(result.publicKey) });
  try {
    expect(log.version).toBe(5);
    expect(log.headHash).toBe(result.headHash);
    for (const entry of log.entries()) expect(entry.terms).toHaveLength(6); // 3 agents × 2 distinct seeds
    const slab = prepared.slab.slice();
    replay(noise, slab, log.entries(), log.distribution, { padding: paddingRanges(prepared.manifest.tensors, slab.length) });
    const replayed = slabSha256(slab);
    expect(replayed).not.toBe(prepared.manifest.slabSha256);
    expect(result.coordinator).toBe(replayed);
    expect(result.agents).toEqual([replayed, replayed, replayed]);
  } finally {
    await log.close();
  }
});
