/**
 * Real agents with device limits against a real coordinator over the in-memory transport: the load reading is
 * injected, so what the agent sees is set by the test, not by this machine's load.
 */
import { describe, expect, it } from 'vitest';
import { RoundFailedError } from '../../coordinator/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { DeviceBudget, predictMezoPeak } from '../../edge-agent/device-budget.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, InMemoryTransport, type Transport } from '../../shared/transport/index.js';
import { fixture, makeAgent, startCoordinator, until, type Fixture } from './fleet-fixture.js';

function agentWith(f: Fixture, transport: Transport, index: number, device: DeviceBudget): Agent {
  return new Agent({
    agentId: `agent-${index}`,
    transport,
    prepared: f.prepared,
    createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
    data: f.task.agents[index]!,
    dataSeed: index,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    device,
    reconnect: { initialMs: 20, maxMs: 200 },
  });
}

describe('agents that respect their device', () => {
  it('a paused agent (load above its threshold) gets no task and resumes when its load falls', async () => {
    const f = await fixture();
    const transport = new InMemoryTransport();
    const c = await startCoordinator(f, transport, { rounds: 3, batchSize: 16, heartbeatMs: 50, strategy: { agentsPerRound: 1 } });
    let load = 4;
    const paused = agentWith(f, transport, 0, new DeviceBudget(f.prepared, { pauseAboveLoad: 1, readLoad: () => load }));
    const other = makeAgent(f, transport, 1);
    const runs = [paused.run(), other.run()];
    await until(() => c.connectedAgents().length === 2, 20_000, 'both agents connected');
    await until(() => c.agentStatus('agent-0')!.capabilities.busy === true, 20_000, 'the paused agent reported busy');
    expect(await c.run()).toMatchObject({ roundsRun: 3 });
    expect(c.agentStatus('agent-0')!.stats.tasks).toBe(0);
    expect(c.agentStatus('agent-1')!.stats.accepted).toBe(3);
    load = 0.1;
    await until(() => c.agentStatus('agent-0')!.capabilities.busy === false, 20_000, 'the agent reported free again');
    await c.close();
    paused.stop();
    other.stop();
    await Promise.allSettled(runs);
    await paused.close();
    await other.close();
  });

  it.each([
    ['in memory', () => { const t = new InMemoryTransport(); return { serve: t, agent: () => t }; }],
    ['gRPC', () => ({ serve: new GrpcTransport({ address: '127.0.0.1:0' }), agent: (address: string) => new GrpcTransport({ address }) })],
  ] as Array<[string, () => { serve: Transport; agent: (address: string) => Transport }]>)('declines a task whose batch does not fit its memory budget; the coordinator counts declines, not faults (%s)', async (_name, transports) => {
    const f = await fixture();
    const { serve, agent: agentTransport } = transports();
    // The budget fits batch 16, not the job's batch of 1024.
    const device = new DeviceBudget(f.prepared, { memoryBudgetBytes: predictMezoPeak(f.prepared, 16) });
    expect(device.misfit(16)).toBeUndefined();
    const c = await startCoordinator(f, serve, { rounds: 1, batchSize: 1024, deadlineMs: 3_600_000, maxAttempts: 2, strategy: { agentsPerRound: 1 } });
    const agent = agentWith(f, agentTransport(c.address!), 0, device);
    const run = agent.run();
    await until(() => c.connectedAgents().length === 1, 20_000, 'the agent connected');
    await expect(c.run()).rejects.toBeInstanceOf(RoundFailedError);
    expect(c.agentStatus('agent-0')!.stats).toMatchObject({ tasks: 2, declined: 2, rejected: 0, dropped: 0 });
    expect(agent.state.tasksDeclined).toBe(2);
    await c.close();
    agent.stop();
    await run.catch(() => undefined);
    await agent.close();
  });
});
