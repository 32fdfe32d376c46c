/**
 * The round loop sizes its rounds (how many agents it waits for, the default quorum) from the Strategy object
 * it runs, not from options.strategy, which only builds the default MezoStrategy. A coordinator given a
 * strategy for two agents per round, with round options that still say the default four, must run its rounds
 * with the two agents it has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator, MezoStrategy, type Strategy } from '../../coordinator/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { InMemoryTransport } from '../../shared/transport/index.js';
import { fixture, logHeader, makeAgent, paddingOf, until, type Fixture } from './fleet-fixture.js';

describe('a Strategy object sizes the rounds', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  const agents: Agent[] = [];
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
  });

  function coordinatorWith(strategy: Strategy, jobId: string, transport: InMemoryTransport): Coordinator {
    return new Coordinator({
      log: UpdateLog.inMemory(logHeader(f.prepared, jobId)),
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport,
      strategy,
      // options.strategy is left at its default (four agents per round); only the strategy object says two.
      options: { jobId, rounds: 2, batchSize: 16, deadlineMs: 600_000, waitForAgentsMs: 200, maxAttempts: 1 },
    });
  }

  it('waits for, asks and needs the strategy object\'s agentsPerRound', async () => {
    const transport = new InMemoryTransport();
    const strategy = new MezoStrategy({ agentsPerRound: 2, seedsPerAgent: 1, seed: 3 });
    const coordinator = coordinatorWith(strategy, 'round-size', transport);
    try {
      await coordinator.listen();
      for (const i of [0, 1]) {
        const agent = makeAgent(f, transport, i);
        agents.push(agent);
        void agent.run().catch(() => undefined);
      }
      await until(() => coordinator.connectedAgents().length === 2, 60_000, 'both agents to connect');
      const report = await coordinator.run();
      expect(report).toMatchObject({ roundsRun: 2, version: 2, failedAttempts: 0 });
      expect(coordinator.log.entries().every((e) => e.terms.length === 2)).toBe(true);
    } finally {
      await coordinator.close();
    }
  });

  it('refuses a strategy whose agentsPerRound is not a positive integer, naming the field', () => {
    const bad: Strategy = { agentsPerRound: 0, configureRound: () => [], aggregate: () => null };
    expect(() => coordinatorWith(bad, 'round-size-bad', new InMemoryTransport())).toThrow(/strategy\.agentsPerRound must be a positive integer/);
  });
});
