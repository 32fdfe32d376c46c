import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slabSha256 } from '../../shared/model/index.js';
import { GrpcTransport, checkHealth } from '../../shared/transport/index.js';
import { noise } from '../../shared/noise/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import type { Coordinator } from '../../coordinator/index.js';
import { accuracyOf, fixture, makeAgent, startCoordinator, until, type Fixture } from './fleet-fixture.js';

const ROUNDS = 12;

describe(`federated rounds over gRPC (${noise.kind} noise)`, () => {
  let f: Fixture;
  let coordinator: Coordinator;
  let agents: Agent[] = [];
  let runs: Array<Promise<void>> = [];

  beforeAll(async () => {
    f = await fixture();
    coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), {
      rounds: ROUNDS,
      // Every round closes at quorum (all four answer); a deadline would only fail attempts on a loaded machine.
      deadlineMs: 600_000,
      heartbeatMs: 100,
      batchSize: 64,
      strategy: { agentsPerRound: 4, seedMode: 'distinct', seedsPerAgent: 1, schedule: { lr: 4e-3 }, seed: 11 },
    });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await coordinator.close();
  });

  it('serves grpc.health.v1 while listening', async () => {
    expect(await checkHealth(coordinator.address!)).toBe('SERVING');
    expect(await checkHealth(coordinator.address!, 'mezo.v1.Coordinator')).toBe('SERVING');
    await expect(checkHealth(coordinator.address!, 'no.such.Service')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('completes rounds with four agents, raises target accuracy, and every replica matches base + log bit for bit', async () => {
    agents = [0, 1, 2, 3].map((i) => makeAgent(f, new GrpcTransport({ address: coordinator.address! }), i));
    runs = agents.map((a) => a.run());
    const report = await coordinator.run();
    expect(report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0, stopped: false });
    expect(coordinator.log.entries().map((e) => e.round)).toEqual(Array.from({ length: ROUNDS }, (_, r) => r));
    expect(coordinator.log.entries().every((e) => e.terms.length === 4)).toBe(true);

    const before = await accuracyOf(f, f.prepared.slab);
    const after = await accuracyOf(f, coordinator.materialise());
    expect(after).toBeGreaterThan(before + 0.02);

    // Replicas: same chain head, and (restore by reload) the same weights as the coordinator's materialisation.
    await until(() => agents.every((a) => a.state.version === ROUNDS), 40_000, 'agents to apply the last update');
    const sha = coordinator.weightsSha256();
    for (const agent of agents) {
      expect(agent.state.headHash).toBe(coordinator.log.headHash);
      expect(await agent.backend!.sha256()).toBe(sha);
    }
    for (const status of coordinator.agentStatuses()) {
      expect(status.stats).toMatchObject({ tasks: ROUNDS, rejected: 0, dropped: 0 });
      expect(status.stats.accepted + status.stats.late).toBe(ROUNDS);
    }
  });

  it('lets a late joiner catch up from version 0 to the same weights hash', async () => {
    const late = makeAgent(f, new GrpcTransport({ address: coordinator.address! }), 4);
    agents.push(late);
    runs.push(late.run());
    await until(() => late.state.version === ROUNDS, 40_000, 'the late joiner to catch up');
    expect(late.state.headHash).toBe(coordinator.log.headHash);
    expect(await late.backend!.sha256()).toBe(coordinator.weightsSha256());
    expect(coordinator.weightsSha256()).not.toBe(slabSha256(f.prepared.slab));
    // Its heartbeat reports the same version and hash; the coordinator's audit finds no divergence.
    await until(() => coordinator.agentStatus('agent-4')?.version === ROUNDS, 15_000, 'a heartbeat at the head');
    expect(coordinator.agentStatus('agent-4')).toMatchObject({ connected: true, weightsSha256: coordinator.weightsSha256() });
    expect(coordinator.agentStatuses().every((s) => s.stats.divergent === 0)).toBe(true);
  });
});
