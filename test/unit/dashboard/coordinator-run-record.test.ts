import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig, runCoordinator } from '../../../cli/coordinator-command.js';
import { readRunRecord } from '../../../coordinator/run-record.js';
import type { Agent } from '../../../edge-agent/agent.js';
import { GrpcTransport } from '../../../shared/transport/index.js';
import { fixture, makeAgent, until } from '../../integration/fleet-fixture.js';
import { captureStderr } from '../../helpers/capture-stderr.js';

describe('mezo coordinator --run-record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-run-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the dashboard during the run and writes the run record when it ends', async () => {
    const f = await fixture();
    const stderr = captureStderr();
    const agents: Agent[] = [];
    const runs: Array<Promise<void>> = [];
    try {
      const config = resolveCoordinatorConfig(
        {
          listen: '127.0.0.1:0',
          log: join(dir, 'update.log'),
          rounds: 5,
          agentsPerRound: 2,
          batchSize: 16,
          metricsListen: '127.0.0.1:0',
          metricsToken: 'ops',
          runRecord: join(dir, 'records', 'run.json'),
          evalEvery: 0,
        },
        {},
      );
      const running = runCoordinator(config, []);
      await until(() => /listening on (\S+),/.test(stderr.text), 20_000, 'the coordinator to listen');
      const address = /listening on (\S+),/.exec(stderr.text)![1]!;
      const dashboard = /dashboard on (\S+)\/,/.exec(stderr.text)![1]!;
      const page = await fetch(`${dashboard}/`, { headers: { authorization: 'Bearer ops' } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('assets/dashboard.js');
      for (const i of [0, 1]) {
        const agent = makeAgent(f, new GrpcTransport({ address }), i);
        agents.push(agent);
        runs.push(agent.run());
      }
      const report = await running;
      expect(report).toMatchObject({ roundsRun: 5, version: 5 });
      expect(stderr.text).toContain(`run record written to ${join(dir, 'records', 'run.json')}`);
    } finally {
      stderr.restore();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs);
    }
    const record = await readRunRecord(join(dir, 'records', 'run.json'));
    expect(record).toMatchObject({ kind: 'coordinator', job: 'mezo-job', config: { rounds: 5, agentsPerRound: 2, batchSize: 16 } });
    expect(record.rounds.map((r) => r.round)).toEqual([0, 1, 2, 3, 4]);
    expect(record.rounds.every((r) => r.asked === 2 && r.answered === 2 && r.trainLoss !== null)).toBe(true);
    expect(record.summary).toMatchObject({ rounds: 5, version: 5, agents: 2 });
    // The gRPC transport counts the encoded bytes of every call, catch-up included.
    expect(record.summary.bytesUp).toBeGreaterThan(0);
    expect(record.summary.bytesDown).toBeGreaterThan(0);
    expect(record.endedAt).not.toBeNull();
    // Evaluation off: no accuracy anywhere, and the record says it was off rather than leaving a gap.
    expect(record.evaluations).toEqual([]);
    expect(record.summary.accuracyAfter).toBeNull();
    expect(record.config).toMatchObject({ evalEvery: 0, evalData: null, evalOff: '--eval-every 0' });
  });
});
