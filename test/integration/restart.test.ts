import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UpdateLog } from '../../shared/log/index.js';
import { GrpcTransport } from '../../shared/transport/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { fixture, logHeader, makeAgent, startCoordinator, until } from './fleet-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = {
  rounds: 10,
  deadlineMs: 10_000,
  heartbeatMs: 100,
  batchSize: 32,
  strategy: { agentsPerRound: 2, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 5 },
};

describe('a restarted coordinator', () => {
  it('resumes from its durable log at the next round, with no lost update and an intact chain', async () => {
    const f = await fixture();
    const logPath = join(dir, 'job.log');
    const first = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), options, logPath);
    const address = first.address!;
    const agents: Agent[] = [0, 1].map((i) => makeAgent(f, new GrpcTransport({ address }), i));
    const runs = agents.map((a) => a.run());

    // Stop the first coordinator part-way; the round open at that moment is abandoned, never half-written.
    const running = first.run();
    await until(() => first.log.version >= 4, 20_000, 'four committed rounds');
    await first.close();
    const report = await running;
    expect(report.stopped).toBe(true);
    const committed = report.version;
    expect(committed).toBeGreaterThanOrEqual(4);
    expect(first.log.version).toBe(committed);
    const hashesBefore = first.log.entries().map((e) => e.hash);

    // Same log path, same port: the agents reconnect on their own (with backoff) and carry on.
    const second = await startCoordinator(f, new GrpcTransport({ address }), options, logPath);
    expect(second.log.version).toBe(committed);
    expect(second.nextRound).toBe(committed);
    expect(second.log.recovery).toBeUndefined();
    const final = await second.run();
    expect(final).toMatchObject({ version: options.rounds, roundsRun: options.rounds - committed, stopped: false });

    const entries = second.log.entries();
    expect(entries.slice(0, committed).map((e) => e.hash)).toEqual(hashesBefore);
    expect(entries.map((e) => e.round)).toEqual(Array.from({ length: options.rounds }, (_, r) => r));
    entries.forEach((e, i) => expect(e.prevHash).toBe(i === 0 ? second.log.genesisHash : entries[i - 1]!.hash));

    await until(() => agents.every((a) => a.state.version === options.rounds), 10_000, 'agents at the head');
    for (const agent of agents) {
      expect(agent.state.reconnects).toBeGreaterThanOrEqual(1);
      expect(agent.state.headHash).toBe(second.log.headHash);
      expect(await agent.backend!.sha256()).toBe(second.weightsSha256());
    }
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await second.close();

    // The file on disk verifies end to end on a cold open.
    const reopened = await UpdateLog.open(logPath, logHeader(f.prepared));
    expect(reopened.version).toBe(options.rounds);
    expect(reopened.headHash).toBe(second.log.headHash);
    await reopened.close();
  });
});
