/**
 * The agent's health endpoints (edge-agent/health-server.ts) over a real coordinator on gRPC loopback: /readyz
 * is 503 while the agent connects, 200 once it holds a session at the coordinator's head, 503 with the reason
 * while its device is busy or after it declined a task for its memory budget; /healthz is 200 while the agent
 * runs and 503 once its job has ended. Other paths are 404, other methods 405. Also the CLI's option and env.
 */
import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../coordinator/index.js';
import { Agent, type AgentInit } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { DeviceBudget } from '../../edge-agent/device-budget.js';
import { parseListen, serveAgentHealth, type AgentHealthServer } from '../../edge-agent/health-server.js';
import { resolveAgentConfig, runAgent } from '../../cli/agent-command.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport } from '../../shared/transport/index.js';
import { freePort } from '../helpers/nats-server.js';
import { fixture, logHeader, paddingOf, until, type Fixture } from './fleet-fixture.js';

const HISTORY = 3;

async function get(server: AgentHealthServer, path: string, method = 'GET'): Promise<{ status: number; body: string; allow: string | null }> {
  const response = await fetch(`${server.url}${path}`, { method });
  return { status: response.status, body: await response.text(), allow: response.headers.get('allow') };
}

/** Exit status of scripts/health-probe.mjs --agent (the container's and the unit's check), reading the env. */
function probe(server: AgentHealthServer, endpoint: 'healthz' | 'readyz'): Promise<number> {
  const env = { ...process.env, MEZO_AGENT_HEALTH_LISTEN: server.url.replace(/^http:\/\//, ''), MEZO_COORDINATOR_METRICS_TOKEN: 'not-for-agents' };
  return new Promise((resolve) => execFile(process.execPath, ['scripts/health-probe.mjs', '--agent', endpoint], { env }, (err) => resolve(err ? Number(err.code) : 0)));
}

/** A coordinator whose log already holds HISTORY updates, so a joining agent has something to catch up. */
async function coordinatorAt(f: Fixture, address: string, jobId: string, rounds: number): Promise<Coordinator> {
  const log = UpdateLog.inMemory(logHeader(f.prepared, jobId));
  for (let round = 0; round < HISTORY; round++) await log.append({ round, lr: 1e-3, decay: 1, terms: [{ seed: BigInt(500 + round), coeff: 1e-4 }] });
  const coordinator = new Coordinator({
    log,
    baseSlab: f.prepared.slab,
    padding: paddingOf(f.prepared),
    engine: noise,
    transport: new GrpcTransport({ address }),
    options: { jobId, rounds, deadlineMs: 10_000, heartbeatMs: 250, batchSize: 32, strategy: { agentsPerRound: 1, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 5 } },
  });
  await coordinator.listen();
  return coordinator;
}

function agentTo(f: Fixture, address: string, init: Partial<AgentInit> = {}): Agent {
  return new Agent({
    agentId: 'health-agent',
    token: 'not-to-be-echoed',
    transport: new GrpcTransport({ address }),
    prepared: f.prepared,
    createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
    data: f.task.agents[0]!,
    dataSeed: 0,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
    onJobEnd: 'leave',
    ...init,
  });
}

describe('agent health endpoints', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  it('readyz follows connect, catch-up and the job end; healthz follows the run loop', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const agent = agentTo(f, address);
    const server = await serveAgentHealth({ host: '127.0.0.1', port: 0, health: () => agent.health });
    // A second agent stays for the next job when this one ends.
    const waiting = agentTo(f, address, { agentId: 'health-waiting', onJobEnd: 'wait', dataSeed: 1 });
    const waitingServer = await serveAgentHealth({ host: '127.0.0.1', port: 0, health: () => waiting.health });
    let coordinator: Coordinator | undefined;
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.url).not.toMatch(/:0$/);
      // Not started: neither alive nor ready.
      expect((await get(server, '/healthz')).status).toBe(503);
      expect(await get(server, '/readyz')).toMatchObject({ status: 503, body: 'not started\n' });

      // No coordinator at the address yet: the loop runs (healthz 200) but no session is open (readyz 503).
      const running = agent.run();
      running.catch(() => undefined);
      await until(() => agent.state.reconnects > 0, 20_000, 'a failed connection attempt');
      expect(await get(server, '/healthz')).toEqual({ status: 200, body: 'ok\n', allow: null });
      const connecting = await get(server, '/readyz');
      expect(connecting.status).toBe(503);
      expect(connecting.body).toMatch(/^connecting/);
      expect(connecting.body.trim().split('\n')).toHaveLength(1);
      expect(await probe(server, 'readyz')).toBe(1);
      expect(await probe(server, 'healthz')).toBe(0);

      coordinator = await coordinatorAt(f, address, 'agent-health', HISTORY + 1);
      waiting.run().catch(() => undefined);
      let ready = await get(server, '/readyz');
      for (let i = 0; ready.status !== 200 && i < 2000; i++) {
        // Until then the reason is one of the states on the way, never anything else.
        expect(ready.body).toMatch(/^(connecting|catching up: version \d+ of 3)/);
        await new Promise((r) => setTimeout(r, 10));
        ready = await get(server, '/readyz');
      }
      expect(ready).toMatchObject({ status: 200, body: `ready at version ${HISTORY}\n` });
      expect(agent.state.version).toBe(HISTORY);
      expect(agent.state.headHash).toBe(coordinator.log.headHash);
      expect(await probe(server, 'readyz')).toBe(0);
      const head = await get(server, '/readyz', 'HEAD');
      expect(head).toMatchObject({ status: 200, body: '' });

      // Only the two paths, only GET and HEAD, and nothing of the agent's secrets.
      expect((await get(server, '/metrics')).status).toBe(404);
      expect((await get(server, '/')).status).toBe(404);
      expect((await get(server, '/healthz/x')).status).toBe(404);
      expect(await get(server, '/readyz', 'POST')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
      expect(await get(server, '/healthz', 'DELETE')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
      expect((await get(server, '/readyz?x=1')).status).toBe(200);

      // The job runs its last round and ends: the agent leaves, and is neither alive nor ready.
      expect(await coordinator.run()).toMatchObject({ version: HISTORY + 1, stopped: false });
      await running;
      expect(agent.exit?.reason).toBe('job-ended');
      const ended = await get(server, '/healthz');
      expect(ended.status).toBe(503);
      expect(ended.body).toBe('ended: job agent-health ended\n');
      expect(await get(server, '/readyz')).toMatchObject({ status: 503, body: 'ended: job agent-health ended\n' });
      expect(await probe(server, 'healthz')).toBe(1);
      await until(async () => (await get(waitingServer, '/readyz')).body === `waiting for the next job: job agent-health ended at version ${HISTORY + 1}\n`, 20_000, 'the waiting agent waiting');
      expect((await get(waitingServer, '/readyz')).status).toBe(503);
      expect((await get(waitingServer, '/healthz')).status).toBe(200);
      for (const path of ['/healthz', '/readyz']) expect((await get(server, path)).body).not.toContain('not-to-be-echoed');
    } finally {
      await Promise.all([agent.close(), waiting.close()]);
      await Promise.all([server.close(), waitingServer.close()]);
      await coordinator?.close();
    }
  });

  it('readyz is 503 while the device is busy and after a task declined for the memory budget', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    let load = 5;
    const device = new DeviceBudget(undefined, { memoryBudgetBytes: 1 << 20, predictPeak: () => 1 << 30, pauseAboveLoad: 1, readLoad: () => load });
    const agent = agentTo(f, address, { device, onJobEnd: 'wait' });
    const server = await serveAgentHealth({ host: '127.0.0.1', port: 0, health: () => agent.health });
    const coordinator = await coordinatorAt(f, address, 'agent-health-busy', HISTORY + 1);
    try {
      const running = agent.run();
      running.catch(() => undefined);
      await until(async () => (await get(server, '/readyz')).body === 'paused: device busy\n', 20_000, 'readyz paused');
      expect((await get(server, '/readyz')).status).toBe(503);
      expect((await get(server, '/healthz')).status).toBe(200);
      load = 0;
      await until(async () => (await get(server, '/readyz')).status === 200, 20_000, 'readyz 200 once the load dropped');

      // Every task's batch is above the memory budget: the agent declines each attempt, the round finds no
      // quorum, and readyz says why the agent is no use to this job while healthz stays 200.
      await expect(coordinator.run()).rejects.toThrow(/no quorum/);
      expect(agent.state.tasksDeclined).toBeGreaterThan(0);
      expect(agent.state.tasksDone).toBe(0);
      expect(await get(server, '/readyz')).toMatchObject({ status: 503, body: 'declined the last task: memory\n' });
      expect((await get(server, '/healthz')).status).toBe(200);
    } finally {
      await agent.close();
      await server.close();
      await coordinator.close();
    }
    expect((await fetch(`${server.url}/healthz`).catch(() => undefined))?.status).toBeUndefined();
  });

  it('mezo agent with healthListen serves both endpoints for the run and closes them with it', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const listen = `127.0.0.1:${await freePort()}`;
    const coordinator = await coordinatorAt(f, address, 'agent-health-cli', HISTORY + 1);
    try {
      const config = resolveAgentConfig({ agentId: 'cli-agent', coordinator: address, worker: false, agentIndex: 1 }, { MEZO_AGENT_HEALTH_LISTEN: listen });
      const running = runAgent(config, []);
      running.catch(() => undefined);
      const status = async (path: string): Promise<number | undefined> => (await fetch(`http://${listen}${path}`).catch(() => undefined))?.status;
      await until(async () => (await status('/readyz')) === 200, 20_000, 'the CLI agent ready');
      expect(await status('/healthz')).toBe(200);
      expect(await coordinator.run()).toMatchObject({ version: HISTORY + 1 });
      expect((await running).reason).toBe('job-ended');
      // The process would exit now; its server is closed with the agent.
      expect(await status('/healthz')).toBeUndefined();
    } finally {
      await coordinator.close();
    }
  });

  it('--health-listen and MEZO_AGENT_HEALTH_LISTEN set it; it is off when unset; bad values name the field', () => {
    expect(resolveAgentConfig({ agentId: 'a' }, {}).healthListen).toBeUndefined();
    expect(resolveAgentConfig({ agentId: 'a' }, { MEZO_AGENT_HEALTH_LISTEN: '127.0.0.1:9465' }).healthListen).toBe('127.0.0.1:9465');
    expect(resolveAgentConfig({ agentId: 'a', healthListen: '[::1]:0' }, { MEZO_AGENT_HEALTH_LISTEN: '127.0.0.1:9465' }).healthListen).toBe('[::1]:0');
    expect(() => resolveAgentConfig({ agentId: 'a', healthListen: '9465' }, {})).toThrow(/healthListen/);
    expect(parseListen('[::1]:9465')).toEqual({ host: '::1', port: 9465 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(() => parseListen('127.0.0.1:70000')).toThrow(/healthListen: must be host:port/);
    expect(() => parseListen('127.0.0.1')).toThrow(/healthListen/);
  });
});
