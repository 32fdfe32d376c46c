/**
 * A NATS-backed coordinator (the compiled `mezo coordinator --transport nats --log-store jetstream` in a child
 * process) killed with SIGKILL in the middle of a round, then restarted: it resumes from the JetStream log with
 * no update lost, its agents notice the vanished coordinator, re-join on their own, and every agent ends on
 * base + replay(stream).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { openJetStreamLog, replay } from '../../shared/log/index.js';
import { slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { NatsTransport } from '../../shared/transport/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { observedBackend as observed } from '../helpers/delegating-backend.js';
import { COMPILED_CLI as COMPILED, crashJobFlags, killChildren, startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { fixture, logHeader, makeAgent, paddingOf, until } from './fleet-fixture.js';

const JOB = 'nats-crash';
const ROUNDS = 8;

const dir = mkdtempSync(join(tmpdir(), 'mezo-nats-crash-'));
const children: ChildProcess[] = [];
let server: NatsServer | undefined;
afterAll(async () => {
  killChildren(children);
  await server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const startCoordinatorProcess = (natsUrl: string): CliProcess =>
  startCliProcess(
    [
      'coordinator',
      '--transport', 'nats',
      '--nats-url', natsUrl,
      '--log-store', 'jetstream',
      '--log', join(dir, 'unused', 'update.log'),
      ...crashJobFlags(JOB, ROUNDS),
    ],
    children,
  );

describe.skipIf(!natsServerPath())('a NATS coordinator killed mid-round', () => {
  it('resumes from the JetStream log with no lost update, and its agents re-join and re-sync on their own', async () => {
    expect(existsSync(COMPILED), `${COMPILED} is missing: build first (npm test builds it in pretest)`).toBe(true);
    server = await startNatsServer();
    const f = await fixture();

    const first = startCoordinatorProcess(server.url);
    await until(() => first.stderr().includes('listening on'), 15_000, 'the coordinator to listen');
    expect(first.stderr()).toContain(`JetStream stream mezo-log-${JOB}, 0 entries verified`);

    let killedAtVersion = -1;
    const agents: Agent[] = [];
    const killMidRound = (): void => {
      const version = Math.max(...agents.map((a) => a.state.version));
      if (killedAtVersion < 0 && version >= 3) {
        killedAtVersion = version;
        first.process.kill('SIGKILL');
      }
    };
    for (const i of [0, 1]) agents.push(makeAgent(f, new NatsTransport({ jobId: JOB, servers: server.url }), i, observed(killMidRound)));
    const runs = agents.map((a) => a.run());

    const died = await first.exited;
    expect(died.signal).toBe('SIGKILL');
    expect(killedAtVersion).toBeGreaterThanOrEqual(3);
    expect(first.stdout()).toBe('');
    const seen = agents.map((a) => ({ version: a.state.version, headHash: a.state.headHash }));
    expect(Math.max(...seen.map((s) => s.version))).toBe(killedAtVersion);
    const reconnectsBefore = agents.map((a) => a.state.reconnects);

    const second = startCoordinatorProcess(server.url);
    const done = await second.exited;
    expect(done, second.stderr()).toEqual({ code: 0, signal: null });
    expect(second.stderr()).toContain(`JetStream stream mezo-log-${JOB}, ${killedAtVersion} entries verified`);
    expect(second.stderr()).toMatch(new RegExp(`listening on nats://127\\.0\\.0\\.1:${server.port}/mezo\\.${JOB}, log at version ${killedAtVersion}\\b`));
    const report = JSON.parse(second.stdout().trim()) as { roundsRun: number; version: number; headHash: string; stopped: boolean };
    expect(report).toMatchObject({ version: ROUNDS, roundsRun: ROUNDS - killedAtVersion, stopped: false });

    const reader = await connect({ servers: server.url });
    const log = await openJetStreamLog({ connection: reader, header: logHeader(f.prepared, JOB) });
    try {
      const entries = log.entries();
      expect(entries.map((e) => e.round)).toEqual(Array.from({ length: ROUNDS }, (_, r) => r));
      // Every version an agent held before the crash is in the stream with the same hash.
      for (const s of seen) if (s.version > 0) expect(entries[s.version - 1]!.hash).toBe(s.headHash);
      expect(log.headHash).toBe(report.headHash);

      const slab = f.prepared.slab.slice();
      replay(noise, slab, entries, log.distribution, { decayRanges: log.header.decayRanges, padding: paddingOf(f.prepared) });
      const expected = slabSha256(slab);
      await until(() => agents.every((a) => a.state.version === ROUNDS), 10_000, 'agents at the head');
      agents.forEach((agent, i) => expect(agent.state.reconnects).toBeGreaterThan(reconnectsBefore[i]!));
      for (const agent of agents) {
        expect(agent.state.headHash).toBe(log.headHash);
        expect(await agent.backend!.sha256()).toBe(expected);
      }
    } finally {
      await log.close();
      await reader.close();
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    }
  }, 45_000);
});
