import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig, runCoordinator } from '../../../cli/coordinator-command.js';
import { formatCoordinatorSummary, type CoordinatorOutcome } from '../../../cli/coordinator-summary.js';
import { readRunRecord } from '../../../coordinator/run-record.js';
import type { Agent } from '../../../edge-agent/agent.js';
import { replay, UpdateLog } from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { createProgress } from '../../../shared/progress.js';
import { GrpcTransport } from '../../../shared/transport/index.js';
import { accuracyOf, fixture, logHeader, makeAgent, until } from '../../integration/fleet-fixture.js';
import { captureStderr } from '../../helpers/capture-stderr.js';

describe('mezo coordinator --eval-every', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-held-out-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('evaluates the log’s weights on the held-out digits and reports it in the metrics, run record, progress and summary', async () => {
    const f = await fixture();
    const stderr = captureStderr();
    let progressLines = '';
    const progressStream = { write: (s: string) => ((progressLines += s), true) } as unknown as NodeJS.WriteStream;
    let outcome: CoordinatorOutcome | undefined;
    let scraped: number | undefined;
    const agents: Agent[] = [];
    const runs: Array<Promise<void>> = [];
    const logPath = join(dir, 'update.log');
    try {
      const config = resolveCoordinatorConfig(
        { listen: '127.0.0.1:0', log: logPath, rounds: 4, agentsPerRound: 2, batchSize: 16, evalEvery: 2, metricsListen: '127.0.0.1:0', runRecord: join(dir, 'run.json') },
        {},
      );
      const running = runCoordinator(config, [], {
        progress: (total) => createProgress({ label: 'coordinator', total, tty: false, lines: 100, stream: progressStream }),
        onFinished: (o) => (outcome = o),
      });
      await until(() => /listening on (\S+),/.test(stderr.text), 20_000, 'the coordinator to listen');
      const address = /listening on (\S+),/.exec(stderr.text)![1]!;
      const dashboard = /dashboard on (\S+)\/,/.exec(stderr.text)![1]!;
      // The gauge appears with the first evaluation (of the base weights, before any agent is there).
      await until(async () => {
        const text = await (await fetch(`${dashboard}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('mezo_eval_accuracy_ratio '));
        scraped = line === undefined ? undefined : Number(line.split(' ')[1]);
        return scraped !== undefined;
      }, 20_000, 'the accuracy gauge');
      for (const i of [0, 1]) {
        const agent = makeAgent(f, new GrpcTransport({ address }), i);
        agents.push(agent);
        runs.push(agent.run());
      }
      const report = await running;
      expect(report).toMatchObject({ roundsRun: 4, version: 4, heldOut: { before: { round: -1 }, after: { round: 3 } } });
    } finally {
      stderr.restore();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs);
    }

    // Before round 0, after round 1 (every 2), after the last round: the weights the log describes, scored as
    // the tests score any weights.
    const record = await readRunRecord(join(dir, 'run.json'));
    expect(record.evaluations.map((e) => e.round)).toEqual([-1, 1, 3]);
    expect(record.config).toMatchObject({ evalEvery: 2, evalData: 'shifted test digits' });
    const base = await accuracyOf(f, f.prepared.slab);
    expect(record.evaluations[0]!.accuracy).toBe(base);
    expect(scraped).toBe(base);
    const log = await UpdateLog.open(logPath, logHeader(f.prepared, 'mezo-job'));
    const slab = f.prepared.slab.slice();
    replay(noise, slab, log.entries(), 'gaussian');
    await log.close();
    const final = await accuracyOf(f, slab);
    expect(record.evaluations[2]!.accuracy).toBe(final);
    expect(record.summary).toMatchObject({ accuracyBefore: base, accuracyAfter: final });

    // The progress ends on the final evaluation, the figure the summary gives.
    const after = `${(final * 100).toFixed(2)}%`;
    const lines = progressLines.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^coordinator 4/4 .*eval acc ${after.replace('.', '\\.')}`));
    const summary = formatCoordinatorSummary(outcome!);
    expect(summary).toMatch(new RegExp(`^accuracy\\s+${(base * 100).toFixed(2).replace('.', '\\.')}% → ${after.replace('.', '\\.')} \\(held-out shifted test digits, `, 'm'));
    expect(summary).toContain(`${record.summary.wallSeconds.toFixed(1)} s from start to end (run.json wallSeconds`);
    expect(summary).toMatch(/^rounds\s+4 this run \(done; 0 failed attempts\)/m);
    expect(summary).toContain(`run record       ${join(dir, 'run.json')}`);
  });

  it('needs held-out data for a model of its own, and says when evaluation is off', () => {
    expect(() => resolveCoordinatorConfig({ model: 'some/prepared', evalEvery: 5 }, {})).toThrow(/evalData.*--eval-data/);
    expect(resolveCoordinatorConfig({ model: 'some/prepared', evalEvery: 5, evalData: 'held-out.jsonl' }, {})).toMatchObject({ evalEvery: 5 });
    expect(resolveCoordinatorConfig({ model: 'some/prepared' }, {}).evalEvery).toBeUndefined();
  });
});
