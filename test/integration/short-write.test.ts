/**
 * A coordinator whose log file hits a file-size limit (RLIMIT_FSIZE, via the shell's ulimit) in the middle of a
 * record: the append that did not fit whole is not durable, so it is never broadcast — the coordinator stops
 * with the error, no agent holds a version the log lacks, and a restart on the same log resumes the job with the
 * same agents (the failure this replaces: agents at version 64, the restarted log at 63, "versionHeld is ahead").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../edge-agent/agent.js';
import { GrpcTransport } from '../../shared/transport/index.js';
import { UpdateLog } from '../../shared/log/index.js';
import { COMPILED_CLI as COMPILED, CLI, ROOT, crashJobFlags, killChildren, startCliProcess } from '../helpers/cli-process.js';
import { freePort } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, until } from './fleet-fixture.js';

const JOB = 'short-write';
const ROUNDS = 16;

const dir = mkdtempSync(join(tmpdir(), 'mezo-short-write-'));
const children: ChildProcess[] = [];
afterAll(() => {
  killChildren(children);
  rmSync(dir, { recursive: true, force: true });
});

describe('a coordinator whose log write is cut short', () => {
  it('never broadcasts the entry that did not fit, stops, and resumes on restart with its agents', async () => {
    expect(existsSync(COMPILED), `${COMPILED} is missing: build first (npm test builds it in pretest)`).toBe(true);
    const f = await fixture();
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const logPath = join(dir, 'job', 'update.log');
    // No held-out evaluation: its model worker writes files of its own, which the size limit would also cut.
    const args = ['coordinator', '--listen', address, '--log', logPath, '--eval-every', '0', ...crashJobFlags(JOB, ROUNDS)];

    // 2 KiB: the header and about ten entries fit; node ignores SIGXFSZ, so the write past it is short, then EFBIG.
    const limited = spawn('bash', ['-c', 'ulimit -f 2 && exec "$0" "$@"', process.execPath, CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, MEZO_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(limited);
    let stderr = '';
    limited.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => limited.on('exit', (code) => resolve(code)));
    await until(() => stderr.includes('listening on'), 15_000, 'the coordinator to listen');

    const agents: Agent[] = [0, 1].map((i) => makeAgent(f, new GrpcTransport({ address }), i));
    const runs = agents.map((a) => a.run());
    try {
      const code = await exited;
      expect(code).not.toBe(0);
      const failed = /appending entry (\d+) failed, so it is not durable: .*(EFBIG|file too large)/i.exec(stderr);
      expect(failed, stderr).not.toBeNull();
      const lost = Number(failed![1]);
      expect(lost).toBeGreaterThan(1);
      expect(lost).toBeLessThan(ROUNDS);
      // Nothing past the durable head reached an agent.
      expect(Math.max(...agents.map((a) => a.state.version))).toBeLessThan(lost);

      const second = startCliProcess(args, children);
      const done = await second.exited;
      expect(done, second.stderr()).toEqual({ code: 0, signal: null });
      expect(second.stderr()).toContain(`log at version ${lost - 1}`);
      const log = await UpdateLog.open(logPath, logHeader(f.prepared, JOB));
      try {
        expect(log.version).toBe(ROUNDS);
        await until(() => agents.every((a) => a.state.version === ROUNDS), 15_000, 'agents at the head');
        for (const agent of agents) expect(agent.state.headHash).toBe(log.headHash);
      } finally {
        await log.close();
      }
    } finally {
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    }
  }, 60_000);
});
