import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';
import { Coordinator, MezoStrategy, parseRoundOptions, type RoundOptionsInput } from '../../../coordinator/index.js';
import { UpdateLog, collapseTerms, replay } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, entryFieldBytes, fetchLogBytes, type ClientSession, type CoordinatorMessage } from '../../../shared/transport/index.js';
import type { LogEntry } from '../../../shared/log/index.js';

const base = new Float32Array(256).map((_, i) => Math.cos(i) / 16);
const baseSha256 = slabSha256(base);
const header = { jobId: 'unit', baseSha256, distribution: 'gaussian' as const };
const pool = { seedMode: 'pool' as const, poolSize: 4, seedsPerAgent: 2, agentsPerRound: 2, schedule: { kind: 'linear' as const, lr: 1e-2, minLr: 1e-3, totalSteps: 12 } };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mezo-compact-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An agent that answers every task with a g that depends on the seed, and records the updates it is sent. */
async function scripted(transport: InMemoryTransport, agentId: string) {
  const client = transport.connect({ agentId, token: '' });
  await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
  const updates: LogEntry[] = [];
  const session: ClientSession = client.session({
    message: (m: CoordinatorMessage) => {
      if (m.kind === 'update') updates.push(m.update);
      if (m.kind !== 'task') return;
      const lossPlus = m.task.seeds.map((s) => 1 + Number(s % 7n) * 1e-4);
      const lossMinus = m.task.seeds.map(() => 1);
      const g = lossPlus.map((p, k) => (p - lossMinus[k]!) / (2 * m.task.epsilon));
      session.send({ kind: 'result', result: { round: m.task.round, attempt: m.task.attempt, seeds: m.task.seeds, g, lossPlus, lossMinus, sampleCount: 4 } });
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return { client, updates };
}

function start(log: UpdateLog, options: RoundOptionsInput, snapshots?: { dir: string; every: number; keepVersions?: number }) {
  const transport = new InMemoryTransport();
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId: 'unit', heartbeatMs: 1000, ...options }, ...(snapshots ? { snapshots } : {}) });
  return { c, transport };
}

describe('the K-seed pool', () => {
  it('is one pool for the whole job: every round draws its seeds from the same K', () => {
    const strategy = new MezoStrategy({ ...pool, poolSize: 5, agentsPerRound: 2, seedsPerAgent: 1 });
    const agents = ['a', 'b', 'c'].map((id) => ({ id, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' } }));
    const seen = new Set<bigint>();
    for (let round = 0; round < 40; round++) {
      for (const { seeds } of strategy.configureRound({ round, attempt: round % 2, version: round }, agents)) seeds.forEach((s) => seen.add(s));
    }
    expect([...seen].sort()).toEqual([...strategy.seedPool()].sort());
    expect(seen.size).toBe(5);
  });
});

describe('compaction options', () => {
  it('are refused outside pool mode and with weight decay, naming the option', () => {
    expect(() => parseRoundOptions({ compactEvery: 5 })).toThrow(/compactEvery: needs strategy\.seedMode 'pool'/);
    expect(() => parseRoundOptions({ compactEvery: 5, strategy: { ...pool, weightDecay: 0.01 } })).toThrow(/compactEvery: cannot be used with strategy\.weightDecay/);
    expect(() => parseRoundOptions({ compactEvery: 0, strategy: pool })).toThrow(/compactEvery/);
    expect(parseRoundOptions({ compactEvery: 5, strategy: pool }).compactEvery).toBe(5);
    expect(resolveCoordinatorConfig({ compactEvery: 7, seedMode: 'pool' }, {}).job.compactEvery).toBe(7);
    expect(resolveCoordinatorConfig({ seedMode: 'pool' }, { MEZO_COORDINATOR_COMPACT_EVERY: '3' }).job.compactEvery).toBe(3);
    expect(() => resolveCoordinatorConfig({}, { MEZO_COORDINATOR_COMPACT_EVERY: '3' })).toThrow(/job\.compactEvery: .*\(from MEZO_COORDINATOR_COMPACT_EVERY\)/);
    expect(() => resolveCoordinatorConfig({ compactEvery: 7 }, {})).toThrow(/job\.compactEvery: needs strategy\.seedMode 'pool'/);
  });

  it('are refused on a log that already decays the weights', async () => {
    const log = UpdateLog.inMemory({ ...header, decayRanges: [[0, 8]] });
    await log.append({ round: 0, lr: 1, decay: 0.5, terms: [] });
    expect(() => start(log, { compactEvery: 2, strategy: pool })).toThrow(/compactEvery: log entry 1 decays the weights/);
  });
});

describe('a coordinator that compacts', () => {
  it('appends a rebase after every n updates, durable, broadcast, materialised; catch-up sizes start at the rebase', async () => {
    const path = join(dir, 'job.log');
    const options = { rounds: 7, compactEvery: 3, strategy: pool };
    const first = start(await UpdateLog.open(path, header), options);
    await first.c.listen();
    const agent = await scripted(first.transport, 'a');
    await scripted(first.transport, 'b');
    expect(await first.c.run()).toMatchObject({ roundsRun: 7, version: 9 });
    const kinds = first.c.log.entries().map((e) => e.kind[0]).join('');
    expect(kinds).toBe('uuuruuuru');
    // A rebase carries the round of the update before it, so the next round is still last + 1.
    expect(first.c.log.entries().map((e) => e.round)).toEqual([0, 1, 2, 2, 3, 4, 5, 5, 6]);
    for (const rebase of first.c.log.entries().filter((e) => e.kind === 'rebase')) {
      expect(rebase.terms).toEqual(collapseTerms(first.c.log.entries(0, rebase.version - 1)));
      expect(rebase.terms.length).toBeLessThanOrEqual(4);
    }
    const fresh = base.slice();
    replay(noise, fresh, first.c.log.entries(), 'gaussian', { base });
    expect(first.c.weightsSha256()).toBe(slabSha256(fresh));
    await new Promise((r) => setTimeout(r, 20));
    expect(agent.updates.map((u) => `${u.kind[0]}${u.version}`)).toEqual(['u1', 'u2', 'u3', 'r4', 'u5', 'u6', 'u7', 'r8', 'u9']);
    await first.c.close();

    // Restart on the same file: compaction goes on from the count the log implies (one update since v8).
    const second = start(await UpdateLog.open(path, header), { ...options, rounds: 10 }, { dir: join(dir, 'snapshots'), every: 1000, keepVersions: 1 });
    await second.c.listen();
    await scripted(second.transport, 'a');
    await scripted(second.transport, 'b');
    expect(await second.c.run()).toMatchObject({ roundsRun: 3, version: 13 });
    expect(second.c.log.entries().map((e) => e.kind[0]).join('')).toBe('uuuruuuruuuru');
    expect(second.c.log.lastRebaseVersion).toBe(12);
    const replayed = base.slice();
    replay(noise, replayed, second.c.log.entries(), 'gaussian', { base });
    expect(second.c.weightsSha256()).toBe(slabSha256(replayed));

    // A fresh agent is told about the rebase; its log path is the entries from the rebase on, and the bounded
    // history (keepVersions 1, no snapshot) serves exactly those.
    const probe = second.transport.connect({ agentId: 'probe', token: '' });
    const accepted = await probe.join({ agentId: 'probe', token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
    const tail = second.c.log.entries(11);
    expect(accepted).toMatchObject({ rebaseVersion: 12, logFloor: 11, snapshotVersion: 0, currentVersion: 13 });
    expect(accepted.logBytes).toBe(fetchLogBytes(2, tail.reduce((n, e) => n + entryFieldBytes(e), 0), 13));
    await expect(probe.fetchLog({ fromVersion: 0, toVersion: 0 })).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    expect((await probe.fetchLog({ fromVersion: 11, toVersion: 0 })).entries.map((e) => e.kind)).toEqual(['rebase', 'update']);
    await second.c.close();
  });
});
