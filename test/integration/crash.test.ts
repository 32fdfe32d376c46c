/**
 * A coordinator killed with SIGKILL in the middle of a round (the compiled `mezo coordinator` in a child
 * process), then restarted on the same log and port: nothing an agent saw is lost, a torn final record is cut
 * off and reported, rounds resume at the next one, and every agent ends on base + replay(log).
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replay, UpdateLog } from '../../shared/log/index.js';
import { slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport } from '../../shared/transport/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { fixture, logHeader, makeAgent, paddingOf, until } from './fleet-fixture.js';
import { observedBackend as observed } from '../helpers/delegating-backend.js';
import { COMPILED_CLI as COMPILED, crashJobFlags, killChildren, startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { freePort } from '../helpers/nats-server.js';

const JOB = 'crash-test';
const ROUNDS = 8;

const dir = mkdtempSync(join(tmpdir(), 'mezo-crash-'));
const children: ChildProcess[] = [];
afterAll(() => {
  killChildren(children);
  rmSync(dir, { recursive: true, force: true });
});

const startCoordinatorProcess = (port: number, logPath: string): CliProcess =>
  startCliProcess(['coordinator', '--listen', `127.0.0.1:${port}`, '--log', logPath, ...crashJobFlags(JOB, ROUNDS)], children);

describe('a coordinator killed mid-round', () => {
  it('loses no accepted update, truncates a torn tail, resumes at the next round and re-syncs its agents', async () => {
    expect(existsSync(COMPILED), `${COMPILED} is missing: build first (npm test builds it in pretest)`).toBe(true);
    const f = await fixture();
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const logPath = join(dir, 'job', 'update.log');

    const first = startCoordinatorProcess(port, logPath);
    await until(() => first.stderr().includes('listening on'), 15_000, 'the coordinator to listen');

    // Kill the coordinator as soon as an agent starts work on a task at version ≥ 3: that round is open.
    let killedAtVersion = -1;
    const agents: Agent[] = [];
    const killMidRound = (): void => {
      const version = Math.max(...agents.map((a) => a.state.version));
      if (killedAtVersion < 0 && version >= 3) {
        killedAtVersion = version;
        first.process.kill('SIGKILL');
      }
    };
    for (const i of [0, 1]) agents.push(makeAgent(f, new GrpcTransport({ address }), i, observed(killMidRound)));
    const runs = agents.map((a) => a.run());

    const died = await first.exited;
    expect(died.signal).toBe('SIGKILL');
    expect(killedAtVersion).toBeGreaterThanOrEqual(3);
    expect(first.stdout()).toBe(''); // it never got to print a run report

    // What each agent holds at this point came from the dead coordinator's broadcasts or FetchLog.
    const seen = agents.map((a) => ({ version: a.state.version, headHash: a.state.headHash }));
    expect(Math.max(...seen.map((s) => s.version))).toBe(killedAtVersion);

    // A crash during the append would leave a partial record: simulate one after the last whole entry.
    const torn = Buffer.alloc(4 + 40, 0xab);
    torn.writeUInt32LE(120, 0);
    appendFileSync(logPath, torn);

    const second = startCoordinatorProcess(port, logPath);
    const done = await second.exited;
    expect(done, second.stderr()).toEqual({ code: 0, signal: null });
    expect(second.stderr()).toMatch(/torn tail truncated \(44 bytes; entry \d+: record cut short/);
    expect(second.stderr()).toMatch(new RegExp(`listening on ${address.replace(/\./g, '\\.')}, log at version ${killedAtVersion}\\b`));
    const report = JSON.parse(second.stdout().trim()) as { roundsRun: number; version: number; headHash: string; stopped: boolean };
    expect(report).toMatchObject({ version: ROUNDS, roundsRun: ROUNDS - killedAtVersion, stopped: false });

    const log = await UpdateLog.open(logPath, logHeader(f.prepared, JOB));
    try {
      expect(log.recovery).toBeUndefined(); // the restarted coordinator already cut the tail
      const entries = log.entries();
      expect(entries.map((e) => e.round)).toEqual(Array.from({ length: ROUNDS }, (_, r) => r));
      entries.forEach((e, i) => expect(e.prevHash).toBe(i === 0 ? log.genesisHash : entries[i - 1]!.hash));
      for (const s of seen) if (s.version > 0) expect(entries[s.version - 1]!.hash).toBe(s.headHash);
      expect(log.headHash).toBe(report.headHash);

      const slab = f.prepared.slab.slice();
      replay(noise, slab, entries, log.distribution, { decayRanges: log.header.decayRanges, padding: paddingOf(f.prepared) });
      const expected = slabSha256(slab);
      // The agents reconnected on their own, fetched what they missed and applied every broadcast.
      await until(() => agents.every((a) => a.state.version === ROUNDS), 10_000, 'agents at the head');
      for (const agent of agents) {
        expect(agent.state.reconnects).toBeGreaterThanOrEqual(1);
        expect(agent.state.headHash).toBe(log.headHash);
        expect(await agent.backend!.sha256()).toBe(expected);
      }
    } finally {
      await log.close();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    }
  }, 30_000);
});
