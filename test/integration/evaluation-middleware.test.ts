/**
 * AgentInit.evaluation with real agents and a real coordinator (in memory): what a middleware returns is what
 * the agent answers, so the update log follows it, and a pass-through middleware leaves the log bit for bit as
 * it is without one.
 */
import { describe, expect, it } from 'vitest';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import type { EvaluationMiddleware } from '../../edge-agent/evaluation.js';
import { noise } from '../../shared/noise/index.js';
import { InMemoryTransport, type Task } from '../../shared/transport/index.js';
import { fixture, startCoordinator } from './fleet-fixture.js';

/** One round with two agents holding the same data in the same order, agent-0 evaluating through `middleware`. */
async function firstEntry(middleware: EvaluationMiddleware[]) {
  const f = await fixture();
  const transport = new InMemoryTransport();
  const coordinator = await startCoordinator(f, transport, {
    rounds: 1,
    deadlineMs: 600_000,
    heartbeatMs: 100,
    batchSize: 32,
    strategy: { agentsPerRound: 2, seedMode: 'distinct', seedsPerAgent: 2, schedule: { lr: 4e-3 }, seed: 3 },
  });
  const seen: Task[] = [];
  const recording: EvaluationMiddleware = (context, next) => {
    seen.push(context.task);
    return next(context);
  };
  const agents = [0, 1].map(
    (i) =>
      new Agent({
        agentId: `agent-${i}`,
        transport,
        prepared: f.prepared,
        createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
        // The same batches on both: which seeds each agent is given cannot change a seed's coefficient.
        data: f.task.agents[0]!,
        dataSeed: 0,
        capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
        ...(i === 0 ? { evaluation: [recording, ...middleware] } : {}),
      }),
  );
  const runs = agents.map((a) => a.run());
  try {
    const report = await coordinator.run();
    expect(report).toMatchObject({ roundsRun: 1, version: 1, failedAttempts: 0 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ round: 0, version: 0, batchSize: 32 });
    expect(agents[0]!.state.tasksDone).toBe(1);
    const entry = coordinator.log.entries()[0]!;
    return { terms: entry.terms, agent0Seeds: seen[0]!.seeds, hash: entry.hash };
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await coordinator.close();
  }
}

describe(`evaluation middleware in a fleet (${noise.kind} noise)`, () => {
  it('a pass-through layer changes no bit of the log; a layer that negates g negates exactly its agent’s coefficients', async () => {
    const plain = await firstEntry([]);
    const passThrough = await firstEntry([(context, next) => next(context)]);
    expect(passThrough.hash).toBe(plain.hash);

    const negate: EvaluationMiddleware = async (context, next) =>
      (await next(context)).map((e) => ({ ...e, g: -e.g, lossPlus: e.lossMinus, lossMinus: e.lossPlus }));
    const negated = await firstEntry([negate]);
    expect(negated.hash).not.toBe(plain.hash);
    const before = new Map(plain.terms.map((t) => [t.seed, t.coeff]));
    expect(negated.terms.map((t) => t.seed).sort()).toEqual([...before.keys()].sort());
    expect(negated.agent0Seeds).toHaveLength(2);
    for (const term of negated.terms) {
      const coeff = before.get(term.seed)!;
      expect(coeff).not.toBe(0);
      expect(term.coeff).toBe(negated.agent0Seeds.includes(term.seed) ? -coeff : coeff);
    }
  });
});
