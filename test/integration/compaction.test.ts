/**
 * Compaction over gRPC on loopback, with real agents: a K-seed pool job with an LR schedule writes a rebase
 * record after every few updates. Every in-sync agent, a late joiner (which replays K terms plus the tail, not
 * the history), an agent restarted from its stored replica, and a fresh replay of the log file all reach the
 * coordinator's materialised weights bit for bit — across a coordinator restart that continues compaction. The
 * rebase result differs in some bits from applying the same updates in order (why the record must be in the
 * log), while staying numerically close.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import type { MezoBackend } from '../../edge-agent/mezo-backend.js';
import { UpdateLog, collapseTerms, encodeEntryPayload, hashPayload, replay, verifyRebases, type LogEntry } from '../../shared/log/index.js';
import { slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, type AgentCredentials, type CoordinatorClient, type CoordinatorHandler, type Listener, type Transport } from '../../shared/transport/index.js';
import { bitsOf } from '../helpers/bits.js';
import { delegatingBackend } from '../helpers/delegating-backend.js';
import { fixture, logHeader, makeAgent, paddingOf, startCoordinator, until, type Fixture } from './fleet-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-compaction-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const K = 8;
const options = {
  deadlineMs: 10_000,
  heartbeatMs: 500,
  batchSize: 32,
  compactEvery: 5,
  strategy: {
    agentsPerRound: 3,
    seedsPerAgent: 2,
    seedMode: 'pool' as const,
    poolSize: K,
    schedule: { kind: 'cosine' as const, lr: 4e-3, minLr: 4e-4, warmupSteps: 3, totalSteps: 18 },
    seed: 21,
  },
};

/** What a backend was asked to do: weight loads, apply calls and the terms they carried. */
interface Work {
  loads: number;
  applies: number;
  terms: number;
}

function counted(work: Work) {
  return (inner: MezoBackend): MezoBackend =>
    delegatingBackend(inner, {
      load: (slab) => {
        work.loads++;
        return inner.load(slab);
      },
      apply: (terms, decay) => {
        work.applies++;
        work.terms += terms.length;
        return inner.apply(terms, decay);
      },
    });
}

function storedAgent(f: Fixture, address: string, stateDir: string, work?: Work): Agent {
  return new Agent({
    agentId: 'agent-0',
    transport: new GrpcTransport({ address }),
    prepared: f.prepared,
    createBackend: async (distribution) => {
      const backend = await createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 });
      return work ? counted(work)(backend) : backend;
    },
    data: f.task.agents[0]!,
    dataSeed: 0,
    stateDir,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
  });
}

/** Re-signs every rebase record it passes with one coefficient nudged: a well-formed record, wrong sums. */
class ForgingTransport implements Transport {
  private readonly inner: GrpcTransport;

  constructor(address: string) {
    this.inner = new GrpcTransport({ address });
  }

  listen(handler: CoordinatorHandler): Promise<Listener> {
    return this.inner.listen(handler);
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    const client = this.inner.connect(credentials);
    const forge = (entry: LogEntry): LogEntry => {
      if (entry.kind !== 'rebase' || entry.terms.length === 0) return entry;
      const { hash: _hash, ...unsigned } = entry;
      const forged = { ...unsigned, terms: unsigned.terms.map((t, k) => (k === 0 ? { ...t, coeff: Math.fround(t.coeff + 1e-3) } : t)) };
      return { ...forged, hash: hashPayload(encodeEntryPayload(forged)) };
    };
    return {
      ...client,
      join: (request) => client.join(request),
      fetchSnapshot: (request) => client.fetchSnapshot(request),
      close: () => client.close(),
      fetchLog: async (request) => {
        const page = await client.fetchLog(request);
        return { ...page, entries: page.entries.map(forge) };
      },
      session: (listener) =>
        client.session({ ...listener, message: (m) => listener.message(m.kind === 'update' ? { kind: 'update', update: forge(m.update) } : m) }),
    };
  }
}

describe(`compaction of a K-seed pool over gRPC (${noise.kind} noise)`, () => {
  it('re-anchors every replica at each rebase, bit for bit, across a restart; a late joiner replays K terms + the tail', async () => {
    const f = await fixture();
    const logPath = join(dir, 'job.log');
    const stateDir = join(dir, 'agent-0');

    // 12 rounds: updates 1-5, rebase 6, updates 7-11, rebase 12, updates 13-14.
    const first = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), { ...options, rounds: 12 }, logPath);
    const address = first.address!;
    const fleet = [storedAgent(f, address, stateDir), ...[1, 2].map((i) => makeAgent(f, new GrpcTransport({ address }), i))];
    const runs = fleet.map((a) => a.run());
    expect(await first.run()).toMatchObject({ roundsRun: 12, version: 14 });
    expect(first.log.lastRebaseVersion).toBe(12);
    await until(() => fleet.every((a) => a.state.version === 14), 20_000, 'the fleet at version 14');
    for (const agent of fleet) expect(await agent.backend!.sha256()).toBe(first.weightsSha256());
    await first.close();

    // Restart on the same log and port: 6 more rounds, compaction continues (rebase 18), agents reconnect.
    const second = await startCoordinator(f, new GrpcTransport({ address }), { ...options, rounds: 18 }, logPath);
    expect(second.log.version).toBe(14);
    expect(await second.run()).toMatchObject({ roundsRun: 6, version: 21 });
    const entries = second.log.entries();
    expect(entries.map((e) => e.kind[0]).join('')).toBe('uuuuuruuuuuruuuuuruuu');
    expect(second.log.lastRebaseVersion).toBe(18);
    expect(() => verifyRebases(entries)).not.toThrow();
    const rebase = entries[17]!;
    expect(rebase.terms).toEqual(collapseTerms(entries.slice(0, 17)));
    expect(rebase.terms.length).toBeLessThanOrEqual(K);
    // The schedule moved the rate: coefficients of the same seed came with different learning rates.
    expect(new Set(entries.filter((e) => e.kind === 'update').map((e) => e.lr)).size).toBeGreaterThan(5);

    const sha = second.weightsSha256();
    await until(() => fleet.every((a) => a.state.version === 21), 20_000, 'the fleet at the head');
    for (const agent of fleet) {
      expect(agent.state.headHash).toBe(second.log.headHash);
      expect(await agent.backend!.sha256()).toBe(sha);
    }

    // A late joiner: behind the last rebase, it starts at the record and replays K terms plus three entries.
    const work: Work = { loads: 0, applies: 0, terms: 0 };
    const late = makeAgent(f, new GrpcTransport({ address }), 3, counted(work));
    const lateRun = late.run();
    await until(() => late.state.version === 21, 20_000, 'the late joiner at the head');
    expect(late.state.lastCatchUp).toMatchObject({ path: 'log', from: 0, to: 21, rebaseVersion: 18 });
    const tail = entries.slice(18);
    expect(work).toEqual({ loads: 1, applies: 1 + tail.length, terms: rebase.terms.length + tail.reduce((n, e) => n + e.terms.length, 0) });
    const history = entries.filter((e) => e.kind === 'update').reduce((n, e) => n + e.terms.length, 0);
    expect(history).toBe(18 * 6);
    expect(work.terms).toBeLessThan(history / 3);
    expect(late.state.headHash).toBe(second.log.headHash);
    expect(await late.backend!.sha256()).toBe(sha);
    await until(() => second.agentStatus('agent-3')?.weightsSha256 === sha, 5000, 'the late joiner to report its weights');
    expect(second.agentStatuses().every((s) => s.stats.divergent === 0)).toBe(true);

    // An agent restarted on its stored replica replays it from the last rebase, and its file verifies.
    await fleet[0]!.close();
    const restartedWork: Work = { loads: 0, applies: 0, terms: 0 };
    const restarted = storedAgent(f, address, stateDir, restartedWork);
    const restartedRun = restarted.run();
    await until(() => restarted.state.version === 21, 20_000, 'the restarted agent at the head');
    expect(restarted.state.lastCatchUp).toBeUndefined(); // nothing to fetch: the replica was at the head
    expect(restartedWork).toMatchObject({ loads: 1, applies: 1 + tail.length });
    expect(await restarted.backend!.sha256()).toBe(sha);

    for (const agent of [...fleet, late, restarted]) await agent.close();
    await Promise.all([...runs, lateRun, restartedRun]);
    await second.close();
    const replica = await UpdateLog.open(join(stateDir, 'fleet-test.log'), logHeader(f.prepared));
    expect(replica.version).toBe(21);
    expect(replica.headHash).toBe(second.log.headHash);
    await replica.close();

    // A fresh read of the log file, replayed onto the base slab: the coordinator's hash.
    const reopened = await UpdateLog.open(logPath, logHeader(f.prepared));
    const fresh = f.prepared.slab.slice();
    replay(noise, fresh, reopened.entries(), 'gaussian', { base: f.prepared.slab, padding: paddingOf(f.prepared) });
    expect(slabSha256(fresh)).toBe(sha);

    // Why the record must be in the log: at version 18, base + Σ C_k·z_k differs in bits from the same 15 updates
    // applied in order, on some elements, and only by float32 rounding.
    const atRebase = f.prepared.slab.slice();
    replay(noise, atRebase, reopened.entries(0, 18), 'gaussian', { base: f.prepared.slab });
    const inOrder = f.prepared.slab.slice();
    replay(noise, inOrder, reopened.entries(0, 18).filter((e) => e.kind === 'update'), 'gaussian');
    await reopened.close();
    const a = bitsOf(atRebase);
    const b = bitsOf(inOrder);
    let differing = 0;
    let worst = 0;
    let largestUpdate = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) differing++;
      worst = Math.max(worst, Math.abs(atRebase[i]! - inOrder[i]!));
      largestUpdate = Math.max(largestUpdate, Math.abs(inOrder[i]! - f.prepared.slab[i]!));
    }
    expect(differing).toBeGreaterThan(0);
    expect(differing).toBeLessThan(a.length);
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-5 * largestUpdate);
  });

  it('an in-sync agent refuses a rebase record that its own history does not sum to', async () => {
    const f = await fixture();
    const small = { ...options, rounds: 4, compactEvery: 2, strategy: { ...options.strategy, agentsPerRound: 1, seedsPerAgent: 1, poolSize: 3 } };
    const coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), small, join(dir, 'forged.log'));
    const address = coordinator.address!;
    const honest = makeAgent(f, new GrpcTransport({ address }), 1);
    const fooled = makeAgent(f, new ForgingTransport(address), 2);
    const honestRun = honest.run();
    const fooledRun = fooled.run().then(() => undefined, (err: unknown) => err);
    await coordinator.run();
    expect(await fooledRun).toMatchObject({ name: 'AgentStateError', message: expect.stringMatching(/rebase 3 does not follow from the entries before it: seed \d+ has coefficient/) });
    expect(fooled.state.version).toBe(2);
    await until(() => honest.state.version === coordinator.log.version, 10_000, 'the honest agent at the head');
    expect(await honest.backend!.sha256()).toBe(coordinator.weightsSha256());
    await Promise.all([honest.close(), fooled.close()]);
    await honestRun;
    await coordinator.close();
  });
});
