/**
 * Strategy.configureTask with a real coordinator and real agents (in memory, through protobuf bytes): each
 * agent's evaluation middleware sees exactly the config the strategy gave it for that round, a strategy
 * without the hook sends tasks without config, the config alone changes no bit of the log, and a config the
 * wire would refuse fails the job before any task is sent, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import type { EvaluationMiddleware } from '../../edge-agent/evaluation.js';
import { Coordinator, MezoStrategy, type AgentResult, type AgentView, type RoundContext, type RoundFailure, type Strategy } from '../../coordinator/index.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, InMemoryTransport, type TaskConfig, type Transport } from '../../shared/transport/index.js';
import { fixture, logHeader, paddingOf } from './fleet-fixture.js';

const ROUNDS = 3;
const AGENTS = 2;

/** Delegates rounds and aggregation to a MezoStrategy; with `configure`, it is also the strategy's configureTask. */
function strategyWith(configure?: (context: RoundContext, agentId: string) => TaskConfig | undefined): Strategy & { given: Array<{ agentId: string; round: number; attempt: number; config: TaskConfig | undefined }> } {
  const inner = new MezoStrategy({ agentsPerRound: AGENTS, seedMode: 'distinct', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 4e-3 }, seed: 11 });
  const given: Array<{ agentId: string; round: number; attempt: number; config: TaskConfig | undefined }> = [];
  return {
    given,
    agentsPerRound: inner.agentsPerRound,
    configureRound: (context: RoundContext, agents: readonly AgentView[]) => inner.configureRound(context, agents),
    aggregate: (context: RoundContext, results: readonly AgentResult[], _failures: readonly RoundFailure[]) => inner.aggregate(context, results),
    ...(configure
      ? {
          configureTask: (context: RoundContext, agentId: string) => {
            const config = configure(context, agentId);
            given.push({ agentId, round: context.round, attempt: context.attempt, config });
            return config;
          },
        }
      : {}),
  };
}

interface Seen {
  agentId: string;
  round: number;
  attempt: number;
  config: TaskConfig | undefined;
}

type Link = 'memory' | 'grpc';

/** A job of ROUNDS rounds with AGENTS real agents whose middleware records each task's config. */
async function runJob(strategy: Strategy, link: Link = 'memory') {
  const f = await fixture();
  const transport: Transport = link === 'memory' ? new InMemoryTransport() : new GrpcTransport({ address: '127.0.0.1:0' });
  const log = UpdateLog.inMemory(logHeader(f.prepared, 'task-config'));
  const coordinator = new Coordinator({
    log,
    baseSlab: f.prepared.slab,
    padding: paddingOf(f.prepared),
    engine: noise,
    transport,
    strategy,
    // An hour's deadline: every round waits for both answers, never for the clock.
    options: { jobId: 'task-config', rounds: ROUNDS, deadlineMs: 3_600_000, heartbeatMs: 100, batchSize: 16 },
  });
  await coordinator.listen();
  const seen: Seen[] = [];
  const recording: EvaluationMiddleware = (context, next) => {
    seen.push({ agentId: context.agentId, round: context.task.round, attempt: context.task.attempt, config: context.task.config });
    return next(context);
  };
  const agents = Array.from(
    { length: AGENTS },
    (_, i) =>
      new Agent({
        agentId: `agent-${i}`,
        // In memory the agents share the coordinator's transport object; over gRPC each dials it on loopback.
        transport: link === 'memory' ? transport : new GrpcTransport({ address: coordinator.address! }),
        prepared: f.prepared,
        createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
        data: f.task.agents[i]!,
        dataSeed: i,
        capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
        evaluation: [recording],
      }),
  );
  const runs = agents.map((a) => a.run());
  try {
    const outcome = await coordinator.run().then(
      (report) => ({ report, error: undefined }),
      (error: unknown) => ({ report: undefined, error }),
    );
    return { ...outcome, seen, log };
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await coordinator.close();
  }
}

const byKey = <T extends { agentId: string; round: number; attempt: number }>(list: readonly T[]) =>
  [...list].sort((a, b) => a.round - b.round || a.attempt - b.attempt || a.agentId.localeCompare(b.agentId));

describe(`a Strategy's per-task config in a fleet (${noise.kind} noise)`, () => {
  it('reaches each agent’s middleware exactly as the strategy gave it, per agent and round, and changes no bit of the log', async () => {
    const configured = strategyWith((context, agentId) => ({
      round: context.round,
      agent: agentId,
      temperature: 0.5 / (context.round + 1),
      warm: context.round === 0,
      ...(agentId === 'agent-1' ? { extra: 'only for agent-1' } : {}),
    }));
    const withConfig = await runJob(configured);
    expect(withConfig.error).toBeUndefined();
    expect(withConfig.report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0 });
    // Asked once per agent and round, and every task evaluated saw exactly that agent's config for its round.
    expect(configured.given).toHaveLength(ROUNDS * AGENTS);
    expect(byKey(withConfig.seen)).toEqual(byKey(configured.given));
    expect(withConfig.seen.find((s) => s.agentId === 'agent-1' && s.round === 2)!.config).toEqual({ round: 2, agent: 'agent-1', temperature: 0.5 / 3, warm: false, extra: 'only for agent-1' });

    // Without the hook (and with one that gives nothing): tasks carry no config, and the log is the same bits.
    const plain = await runJob(strategyWith());
    const none = strategyWith((context) => (context.round % 2 === 0 ? undefined : {}));
    const empty = await runJob(none);
    for (const run of [plain, empty]) {
      expect(run.report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0 });
      expect(run.seen).toHaveLength(ROUNDS * AGENTS);
      expect(run.seen.every((s) => s.config === undefined)).toBe(true);
      expect(run.log.headHash).toBe(withConfig.log.headHash);
    }
    expect(none.given).toHaveLength(ROUNDS * AGENTS);
  });

  it('reaches the middleware the same way over gRPC on loopback', async () => {
    const configured = strategyWith((context, agentId) => ({ round: context.round, agent: agentId, scale: 2 ** -context.round, odd: context.round % 2 === 1 }));
    const run = await runJob(configured, 'grpc');
    expect(run.error).toBeUndefined();
    expect(run.report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0 });
    expect(configured.given).toHaveLength(ROUNDS * AGENTS);
    expect(byKey(run.seen)).toEqual(byKey(configured.given));
  });

  it('fails the job before any task is sent when the strategy gives a config the wire would refuse, naming the field', async () => {
    const bad = strategyWith((context, agentId): TaskConfig => (agentId === 'agent-1' ? { ok: 1, 'bad key': true } : { ok: context.round }));
    const run = await runJob(bad);
    expect(run.error).toBeInstanceOf(TypeError);
    expect((run.error as Error).message).toMatch(/^strategy\.configureTask: task\.config\.bad key is not a valid key.*\(agent agent-1, round 0\)$/);
    expect(run.seen).toEqual([]);
    expect(run.log.version).toBe(0);

    const nan = await runJob(strategyWith(() => ({ lr: Number.NaN })));
    expect((nan.error as Error).message).toMatch(/^strategy\.configureTask: task\.config\.lr /);
    expect(nan.seen).toEqual([]);
  });
});
