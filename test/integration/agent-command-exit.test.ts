/**
 * `mezo agent` (the compiled CLI in child processes) against an in-process coordinator: when the job ends the
 * agents exit by themselves with code 0 and one line saying why; with --keep-waiting an agent stays connected to
 * an ended job until a signal stops it; with --give-up-after-ms and nothing to reach it exits 1.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcTransport } from '../../shared/transport/index.js';
import { freePort } from '../helpers/nats-server.js';
import { killChildren, startCliProcess } from '../helpers/cli-process.js';
import { fixture, startCoordinator, until } from './fleet-fixture.js';

const JOB = 'cli-job-end';
const children: ChildProcess[] = [];
afterEach(() => killChildren(children));

const agentArgs = (address: string, k: number, ...extra: string[]): string[] =>
  ['agent', '--coordinator', address, '--agent-id', `cli-${k}`, '--agent-index', String(k), '--num-agents', '4', '--no-worker', ...extra];

describe('mezo agent at the end of a job', () => {
  it('exits 0 with a one-line reason; --keep-waiting stays until stopped', async () => {
    const f = await fixture();
    const coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), {
      jobId: JOB,
      rounds: 3,
      deadlineMs: 20_000,
      heartbeatMs: 250,
      batchSize: 32,
      strategy: { agentsPerRound: 2, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 1 },
    });
    try {
      const address = coordinator.address!;
      const agents = [0, 1].map((k) => startCliProcess(agentArgs(address, k), children));
      expect(await coordinator.run()).toMatchObject({ roundsRun: 3, version: 3, stopped: false });
      const head = coordinator.log.headHash.slice(0, 12);
      for (const [k, agent] of agents.entries()) {
        expect(await agent.exited).toEqual({ code: 0, signal: null });
        expect(agent.stdout()).toBe(`agent cli-${k}: job ${JOB} completed at version 3 (head ${head}); exiting\n`);
      }

      // Joining the ended job with --keep-waiting: it catches up, stays connected (heartbeats at the head) until stopped.
      const waiting = startCliProcess(agentArgs(address, 2, '--keep-waiting'), children);
      await until(() => coordinator.agentStatus('cli-2')?.weightsVersion === 3, 30_000, 'the waiting agent to report its weights at the head');
      expect(coordinator.agentStatus('cli-2')).toMatchObject({ connected: true, weightsSha256: coordinator.weightsSha256() });
      expect(waiting.process.exitCode).toBeNull();
      waiting.process.kill('SIGTERM');
      expect(await waiting.exited).toEqual({ code: 0, signal: null });
      expect(waiting.stdout()).toBe('agent cli-2: stopped\n');
    } finally {
      await coordinator.close();
    }
  });

  it('exits 1 after --give-up-after-ms without reaching a coordinator', async () => {
    const lonely = startCliProcess(agentArgs(`127.0.0.1:${await freePort()}`, 3, '--give-up-after-ms', '500'), children);
    expect(await lonely.exited).toEqual({ code: 1, signal: null });
    expect(lonely.stderr()).toMatch(/^mezo: no coordinator reached for \d+ ms \(giving up after 500 ms\); last error: .*ECONNREFUSED/m);
    expect(lonely.stdout()).toBe('');
  });
});
