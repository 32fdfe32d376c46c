/**
 * Secure aggregation end to end: the real coordinator and real agents (onnxruntime sessions on the default task)
 * over the in-memory transport, with every message that reaches the coordinator's handler recorded, and the
 * simulation over memory (with dropouts), gRPC and NATS.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../edge-agent/agent.js';
import type { MezoBackend } from '../../edge-agent/mezo-backend.js';
import { MezoStrategy, type AgentResult, type Coordinator, type RoundContext, type RoundFailure } from '../../coordinator/index.js';
import { SecureAggregationConfigError } from '../../coordinator/secure-aggregation.js';
import {
  InMemoryTransport,
  type AgentMessage,
  type CoordinatorClient,
  type CoordinatorHandler,
  type ServerSession,
  type Transport,
} from '../../shared/transport/index.js';
import { runSimulation } from '../../simulation/simulate.js';
import { joinScriptedAgent } from '../helpers/scripted-agent.js';
import { resolveSimulateConfig } from '../../cli/simulate-command.js';
import { resolveCoordinatorConfig, runCoordinator } from '../../cli/coordinator-command.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delegatingBackend } from '../helpers/delegating-backend.js';
import { natsServerPath } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, startCoordinator } from './fleet-fixture.js';

/** A transport whose listener hands the coordinator's handler sessions that record every agent message. */
function recording(inner: Transport, seen: Array<{ agentId: string; message: AgentMessage }>): Transport {
  return Object.assign(Object.create(inner) as Transport, {
    listen: (handler: CoordinatorHandler) =>
      inner.listen({
        ...handler,
        secretOf: handler.secretOf?.bind(handler),
        signStatement: handler.signStatement?.bind(handler),
        session: (session: ServerSession) =>
          handler.session({
            get info() {
              return session.info;
            },
            send: (m) => session.send(m),
            end: (e) => session.end(e),
            listen: (listener) =>
              session.listen({
                ...listener,
                message: (message) => {
                  seen.push({ agentId: session.info.agentId, message });
                  listener.message(message);
                },
              }),
          }),
      }),
  });
}

/** A MezoStrategy that records what each aggregate is handed: in a secure round, the sum and the failures. */
class RecordingMean extends MezoStrategy {
  readonly calls: Array<{ round: number; results: string[]; failures: RoundFailure[] }> = [];
  override aggregate(context: RoundContext, results: readonly AgentResult[], failures: readonly RoundFailure[] = []) {
    this.calls.push({ round: context.round, results: results.map((r) => r.agentId), failures: [...failures].sort((a, b) => a.agentId.localeCompare(b.agentId)) });
    return super.aggregate(context, results);
  }
}

/** An agent that joins, then on its task declines it or ends its session, so it never enters the protocol. */
async function refusingAgent(transport: Transport, baseSha256: string, agentId: string, how: 'decline' | 'drop'): Promise<CoordinatorClient> {
  const { client } = await joinScriptedAgent(transport, { agentId, baseSha256 }, (task, session) => {
    if (how === 'decline') session.send({ kind: 'decline', decline: { round: task.round, attempt: task.attempt, reason: 'memory' } });
    else session.end();
  });
  return client;
}

let coordinator: Coordinator | undefined;
let agents: Agent[] = [];
let clients: CoordinatorClient[] = [];

afterEach(async () => {
  await Promise.all(agents.map((a) => a.close()));
  agents = [];
  clients.forEach((c) => c.close());
  clients = [];
  await coordinator?.close();
  coordinator = undefined;
});

describe('secure aggregation over the in-memory transport', () => {
  it("commits rounds from masked input alone: no message reaching the coordinator holds an agent's g or losses", async () => {
    const f = await fixture();
    const seen: Array<{ agentId: string; message: AgentMessage }> = [];
    const transport = recording(new InMemoryTransport(), seen);
    coordinator = await startCoordinator(
      f,
      transport,
      { rounds: 3, deadlineMs: 30_000, batchSize: 16, strategy: { agentsPerRound: 5, seedMode: 'shared', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 1e-3 } } },
      undefined,
      { secureAggregation: { threshold: 0.75 } },
    );
    // What each agent really computed, recorded below the agent.
    const computed: Array<{ agentId: string; g: number[]; losses: number[] }> = [];
    agents = Array.from({ length: 5 }, (_, i) =>
      makeAgent(f, transport, i, (backend: MezoBackend) =>
        delegatingBackend(backend, {
          evaluate: async (...args: Parameters<MezoBackend['evaluate']>) => {
            const evaluations = await backend.evaluate(...args);
            computed.push({ agentId: `agent-${i}`, g: evaluations.map((e) => e.g), losses: evaluations.flatMap((e) => [e.lossPlus, e.lossMinus]) });
            return evaluations;
          },
        }),
      ),
    );
    agents.forEach((a) => void a.run().catch(() => undefined));
    const reports: Array<{ results: number; scalars: number }> = [];
    coordinator.onRound((r) => reports.push({ results: r.results, scalars: r.scalars.length }));
    const run = await coordinator.run();
    expect(run.roundsRun).toBe(3);
    expect(coordinator.log.version).toBe(3);
    // The round reports carry no individual scalars; every agent contributed to every round.
    expect(reports).toEqual([
      { results: 5, scalars: 0 },
      { results: 5, scalars: 0 },
      { results: 5, scalars: 0 },
    ]);
    expect(computed.length).toBeGreaterThanOrEqual(15);
    const kinds = new Set(seen.map((s) => s.message.kind));
    expect(kinds.has('result')).toBe(false);
    expect(kinds.has('secAggMaskedInput')).toBe(true);
    expect(kinds.has('secAggReveal')).toBe(true);
    // No plain g or loss appears in any message the handler received, in any form it could take.
    const text = JSON.stringify(seen.map((s) => s.message), (_, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
    );
    for (const { g, losses } of computed) {
      for (const value of [...g, ...losses]) {
        expect(text).not.toContain(String(value));
        expect(text).not.toContain(value.toPrecision(8));
      }
    }
    for (const { agentId, message } of seen) {
      if (message.kind !== 'secAggMaskedInput') continue;
      // The words are uniformly masked: none is a small fixed-point number (a plain encoding would be).
      for (const w of message.secAggMaskedInput.words) expect(w > 1n << 40n && w < (1n << 64n) - (1n << 40n), `${agentId}: ${w}`).toBe(true);
    }
    // Every agent's replica follows the log the coordinator built from the sums.
    const head = coordinator.weightsSha256();
    for (const agent of agents) {
      while (agent.state.version < 3) await new Promise((r) => setTimeout(r, 20));
      expect(await agent.backend!.sha256()).toBe(head);
    }
  }, 240_000);

  it('hands the strategy the asked agents whose masked input is not in the sum, with why', async () => {
    const f = await fixture();
    const transport = new InMemoryTransport();
    const strategy = new RecordingMean({ agentsPerRound: 6, seedMode: 'shared', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 1e-3 } });
    const reports: Array<{ results: number; dropped: number; asked: number }> = [];
    coordinator = await startCoordinator(
      f,
      transport,
      // Every phase ends when each agent asked has answered or left, so the deadline bounds a hang only.
      { rounds: 1, quorum: 4, deadlineMs: 120_000, batchSize: 16 },
      undefined,
      { strategy, secureAggregation: {}, onRound: (r) => reports.push({ results: r.results, dropped: r.dropped, asked: r.asked }) },
    );
    agents = Array.from({ length: 4 }, (_, i) => makeAgent(f, transport, i));
    agents.forEach((a) => void a.run().catch(() => undefined));
    clients = [
      await refusingAgent(transport, f.prepared.manifest.slabSha256, 'declines', 'decline'),
      await refusingAgent(transport, f.prepared.manifest.slabSha256, 'drops', 'drop'),
    ];
    // All six joined before round 0, so the round asks every one of them.
    const c = coordinator;
    await vi.waitFor(() => expect(c.connectedAgents()).toHaveLength(6), { timeout: 60_000, interval: 10 });
    expect(await coordinator.run()).toMatchObject({ roundsRun: 1, version: 1 });
    expect(reports).toEqual([{ asked: 6, results: 4, dropped: 1 }]);
    expect(strategy.calls).toEqual([
      {
        round: 0,
        results: ['secure-sum'],
        failures: [
          { agentId: 'declines', reason: 'declined' },
          { agentId: 'drops', reason: 'dropped' },
        ],
      },
    ]);
  }, 240_000);

  it('refuses strategies that need individual values, naming the option', async () => {
    const f = await fixture();
    const { Coordinator: CoordinatorClass } = await import('../../coordinator/index.js');
    const { UpdateLog } = await import('../../shared/log/index.js');
    const { noise } = await import('../../shared/noise/index.js');
    const make = (strategy: Record<string, unknown>) => () =>
      new CoordinatorClass({
        log: UpdateLog.inMemory(logHeader(f.prepared)),
        baseSlab: f.prepared.slab,
        engine: noise,
        transport: new InMemoryTransport(),
        options: { jobId: 'fleet-test', strategy },
        secureAggregation: {},
      });
    expect(make({ seedMode: 'shared', aggregation: 'median' })).toThrow(SecureAggregationConfigError);
    expect(make({ seedMode: 'shared', aggregation: 'median' })).toThrow(/strategy.aggregation 'median'/);
    expect(make({ seedMode: 'shared', aggregation: 'trimmed-mean' })).toThrow(/strategy.aggregation 'trimmed-mean'/);
    expect(make({ seedMode: 'distinct' })).toThrow(/strategy.seedMode 'distinct'/);
    expect(make({ seedMode: 'pool' })).toThrow(/strategy.seedMode 'pool'/);
    expect(() =>
      new CoordinatorClass({
        log: UpdateLog.inMemory(logHeader(f.prepared)),
        baseSlab: f.prepared.slab,
        engine: noise,
        transport: new InMemoryTransport(),
        options: { jobId: 'fleet-test', strategy: { seedMode: 'shared' } },
        secureAggregation: { threshold: 0.4 },
      }),
    ).toThrow(/secureAggregation.threshold/);
  });
});

describe('mezo simulate with secure aggregation', () => {
  const small = { agents: 10, agentsPerRound: 6, seedMode: 'shared' as const, seedsPerAgent: 2, rounds: 3, batchSize: 16, deadlineMs: 20_000, seed: 3, secureAggregation: {} };

  it('closes every round with answers lost after the keys were shared (dropout faults)', async () => {
    const report = await runSimulation({ ...small, rounds: 4, deadlineMs: 3000, faults: { dropout: 0.2 }, quorum: 0.5, secureAggregation: { threshold: 0.6 } });
    expect(report.failure).toBeUndefined();
    expect(report.logVersion).toBe(4);
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);
    expect(report.results.rejected).toBe(0);
  }, 240_000);

  it('combines with central DP: the noise goes on the unmasked sum, and ε is accounted per round', async () => {
    const report = await runSimulation({ ...small, dp: { clip: 1, noiseMultiplier: 1 } });
    expect(report.failure).toBeUndefined();
    expect(report.logVersion).toBe(3);
    expect(report.privacy?.roundsReleased).toBe(3);
    expect(report.audit.replicasMatching).toBe(report.audit.replicas);
  }, 240_000);

  it('gives the same update log over memory, gRPC and NATS', async () => {
    const memory = await runSimulation({ ...small, transport: 'memory' });
    const grpc = await runSimulation({ ...small, transport: 'grpc' });
    expect(memory.failure).toBeUndefined();
    expect(grpc.failure).toBeUndefined();
    expect(memory.logVersion).toBe(3);
    expect(grpc.logHeadHash).toBe(memory.logHeadHash);
    expect(grpc.weightsSha256).toBe(memory.weightsSha256);
    if (natsServerPath()) {
      const nats = await runSimulation({ ...small, transport: 'nats' });
      expect(nats.failure).toBeUndefined();
      expect(nats.logHeadHash).toBe(memory.logHeadHash);
    }
  }, 300_000);

  it('takes --secure-aggregation and its threshold and neighbours flags, on mezo simulate and mezo coordinator', () => {
    expect(resolveSimulateConfig({ secureAggregation: true, seedMode: 'shared' }, {}).secureAggregation).toEqual({ enabled: true, threshold: 2 / 3, neighbours: 0 });
    expect(resolveSimulateConfig({ secureAggregation: true, secureAggregationNeighbours: 8, secureAggregationThreshold: 0.8 }, {}).secureAggregation).toEqual({ enabled: true, threshold: 0.8, neighbours: 8 });
    expect(resolveSimulateConfig({}, {}).secureAggregation).toBeUndefined();
    expect(resolveCoordinatorConfig({ secureAggregation: true }, {}).secureAggregation).toEqual({ enabled: true, threshold: 2 / 3, neighbours: 0 });
    expect(() => resolveCoordinatorConfig({ secureAggregation: true, secureAggregationThreshold: 0.4 }, {})).toThrow(/secureAggregation.threshold.*--secure-aggregation-threshold/);
  });

  it('mezo coordinator refuses a strategy it cannot serve before it opens its log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mezo-secagg-'));
    try {
      const config = resolveCoordinatorConfig({ secureAggregation: true, seedMode: 'shared', strategy: 'trimmed-mean', log: join(dir, 'update.log'), listen: '127.0.0.1:0' }, {});
      await expect(runCoordinator(config, [])).rejects.toThrow(/secureAggregation: strategy.aggregation 'trimmed-mean'/);
      expect(existsSync(join(dir, 'update.log'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses median, naming the option', async () => {
    await expect(runSimulation({ ...small, aggregation: 'median' })).rejects.toThrow(/secureAggregation: strategy.aggregation 'median'/);
  });
});
