/**
 * Jobs that finish: when the coordinator's job ends (every round logged, or stopped by its operator), agents set
 * to leave catch up to the final version and their run() resolves; an agent set to wait stays, and joins the next
 * job on the same address; a late joiner of an ended job leaves with the final weights. A coordinator that goes
 * away without a word (a crash) is no end: the agents reconnect. Over gRPC, in memory and NATS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator, type CoordinatorInit } from '../../coordinator/index.js';
import { Agent, CoordinatorUnreachableError, type AgentInit } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { LogSigner, UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, InMemoryTransport, NatsTransport, TransportError, type Transport } from '../../shared/transport/index.js';
import { freePort, natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, paddingOf, startCoordinator, until, type Fixture } from './fleet-fixture.js';

const ROUNDS = 4;
const JOB = 'job-end';
const options = {
  rounds: ROUNDS,
  deadlineMs: 10_000,
  heartbeatMs: 250,
  batchSize: 32,
  // Three agents per round: round 0 waits until all three are connected.
  strategy: { agentsPerRound: 3, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 },
};

const dir = mkdtempSync(join(tmpdir(), 'mezo-job-end-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function agentOn(f: Fixture, transport: Transport, index: number, init: Partial<AgentInit>): Agent {
  return new Agent({
    agentId: `agent-${index}`,
    transport,
    prepared: f.prepared,
    createBackend: (distribution) => createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
    data: f.task.agents[index]!,
    dataSeed: index,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
    ...init,
  });
}

/**
 * A coordinator whose log is signed with a key of its own, as a new job's coordinator would be; `history`
 * updates are in its log before it starts (a job that ran before the agent joined).
 */
async function signedCoordinator(f: Fixture, transport: Transport, options: CoordinatorInit['options'] & { jobId: string }, history = 0): Promise<Coordinator> {
  const log = UpdateLog.inMemory(logHeader(f.prepared, options.jobId), { signer: LogSigner.generate() });
  for (let round = 0; round < history; round++) await log.append({ round, lr: 1e-3, decay: 1, terms: [{ seed: BigInt(1000 + round), coeff: 1e-4 }] });
  const coordinator = new Coordinator({ log, baseSlab: f.prepared.slab, padding: paddingOf(f.prepared), engine: noise, transport, options });
  await coordinator.listen();
  return coordinator;
}

/** How a test reaches a coordinator: its listening transport at an address, and an agent's transport to it. */
interface Wire {
  /** A listening transport; `at` is a previous coordinator's address, to serve the next job where it was. */
  serve(at?: string): Transport;
  agent(address: string): Transport;
  /** The next job's id: NATS agents are bound to a job's subjects, so there it is the same job id again. */
  nextJobId: string;
}

function jobEndScenario(name: string, wire: () => Wire): void {
  it(`${name}: leaving agents exit with the final weights, a late joiner too, and a waiting agent takes the next job`, async () => {
    const f = await fixture();
    const w = wire();
    const first = await signedCoordinator(f, w.serve(), { ...options, jobId: JOB });
    const address = first.address!;
    const leaving = [0, 1].map((i) => agentOn(f, w.agent(address), i, { onJobEnd: 'leave' }));
    const waiting = agentOn(f, w.agent(address), 2, { onJobEnd: 'wait' });
    const runs = leaving.map((a) => a.run());
    const waitingRun = waiting.run();
    try {
      expect(await first.run()).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, stopped: false });
      const jobEnd = { jobId: JOB, reason: 'completed', version: ROUNDS, headHash: first.log.headHash };
      expect(first.jobEnd).toEqual(jobEnd);

      // The leaving agents' run() resolves by itself, at the job's last version and on the coordinator's weights.
      await Promise.all(runs);
      const sha = first.weightsSha256();
      for (const agent of leaving) {
        expect(agent.exit).toEqual({ reason: 'job-ended', jobEnd });
        expect(agent.state).toMatchObject({ version: ROUNDS, headHash: first.log.headHash });
        expect(await agent.backend!.sha256()).toBe(sha);
      }
      // They ended their sessions; the waiting agent keeps its own.
      await until(() => first.connectedAgents().join() === 'agent-2', 10_000, 'the leaving agents to end their sessions');
      expect(waiting.exit).toBeUndefined();

      // A late joiner of the ended job: the Join answer says so; it catches up, opens no session, and leaves.
      const probe = w.agent(address).connect({ agentId: 'probe', token: '' });
      try {
        const capabilities = { memoryBytes: 0, cores: 0, noiseImpl: '' };
        const accepted = await probe.join({ agentId: 'probe', token: '', capabilities, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 });
        expect(accepted).toMatchObject({ currentVersion: ROUNDS, jobEnd });
      } finally {
        probe.close();
      }
      const late = agentOn(f, w.agent(address), 3, { onJobEnd: 'leave' });
      await late.run();
      expect(late.exit).toEqual({ reason: 'job-ended', jobEnd });
      expect(late.state.version).toBe(ROUNDS);
      expect(await late.backend!.sha256()).toBe(sha);
      expect(first.agentStatus('agent-3')?.connected).toBe(false);
      await Promise.all([...leaving, late].map((a) => a.close()));

      // The coordinator goes away; the waiting agent reconnects until the next job is served where it was.
      await first.close();
      // Its log has another key, and already as many entries as the agent holds: a next job even where the job
      // id (and so the genesis hash) is the same.
      const next = { ...options, jobId: w.nextJobId, rounds: ROUNDS + 2, strategy: { ...options.strategy, agentsPerRound: 1 } };
      const second = await signedCoordinator(f, w.serve(address), next, ROUNDS);
      try {
        expect(await second.run()).toMatchObject({ roundsRun: 2, version: ROUNDS + 2, stopped: false });
        await until(() => waiting.state.version === ROUNDS + 2, 10_000, 'the waiting agent at the next job\'s head');
        expect(waiting.state.headHash).toBe(second.log.headHash);
        expect(await waiting.backend!.sha256()).toBe(second.weightsSha256());
        expect(second.agentStatus('agent-2')?.stats.accepted).toBe(2);
        expect(waiting.exit).toBeUndefined();
      } finally {
        await waiting.close();
        await waitingRun;
        await second.close();
      }
      expect(waiting.exit).toEqual({ reason: 'stopped' });
    } finally {
      await Promise.all([...leaving, waiting].map((a) => a.close()));
      await first.close();
    }
  });
}

describe('the end of a job', () => {
  jobEndScenario('gRPC', () => ({
    serve: (at) => new GrpcTransport({ address: at ?? '127.0.0.1:0' }),
    agent: (address) => new GrpcTransport({ address }),
    nextJobId: `${JOB}-next`,
  }));

  jobEndScenario('in memory', () => {
    const transport = new InMemoryTransport();
    return { serve: () => transport, agent: () => transport, nextJobId: `${JOB}-next` };
  });

  describe.skipIf(!natsServerPath())('over NATS', () => {
    let server: NatsServer;
    beforeAll(async () => {
      server = await startNatsServer();
    });
    afterAll(() => server?.stop(true));
    jobEndScenario('NATS', () => ({
      serve: () => new NatsTransport({ jobId: JOB, servers: server.url }),
      agent: () => new NatsTransport({ jobId: JOB, servers: server.url }),
      nextJobId: JOB,
    }));
  });

  it('gRPC: a coordinator that goes away without a word is no end (agents reconnect); an operator\'s stop is', async () => {
    const f = await fixture();
    const logPath = join(dir, 'stop.log');
    const twoAgents = { ...options, rounds: 1000, strategy: { ...options.strategy, agentsPerRound: 2 } };
    const first = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0' }), twoAgents, logPath);
    const address = first.address!;
    const agents = [0, 1].map((i) => agentOn(f, new GrpcTransport({ address }), i, { onJobEnd: 'leave' }));
    const runs = agents.map((a) => a.run());
    try {
      // Stopped as after a crash: nothing is said, so the agents keep reconnecting.
      first.onRound((r) => r.version >= 2 && first.stop());
      expect(await first.run()).toMatchObject({ version: 2, stopped: true });
      await first.close();
      expect(first.jobEnd).toBeUndefined();

      // The same job restarted where it was: the agents come back; then the operator stops it for good.
      const second = await startCoordinator(f, new GrpcTransport({ address }), twoAgents, logPath);
      try {
        second.onRound((r) => r.version >= 4 && second.stop({ endJob: true }));
        expect(await second.run()).toMatchObject({ version: 4, stopped: true });
        await Promise.all(runs);
        const jobEnd = { jobId: 'fleet-test', reason: 'stopped', version: 4, headHash: second.log.headHash };
        for (const agent of agents) {
          expect(agent.exit).toEqual({ reason: 'job-ended', jobEnd });
          expect(agent.state.reconnects).toBeGreaterThanOrEqual(1);
          expect(agent.state.version).toBe(4);
          expect(await agent.backend!.sha256()).toBe(second.weightsSha256());
        }
      } finally {
        await second.close();
      }

      // A coordinator opened on a log that already holds every round has nothing to run: a Join hears that the
      // job completed, and the agent leaves with the final weights.
      const complete = await startCoordinator(f, new GrpcTransport({ address }), { ...twoAgents, rounds: 4 }, logPath);
      try {
        const late = agentOn(f, new GrpcTransport({ address }), 2, { onJobEnd: 'leave' });
        await late.run();
        expect(late.exit).toEqual({ reason: 'job-ended', jobEnd: { jobId: 'fleet-test', reason: 'completed', version: 4, headHash: complete.log.headHash } });
        expect(late.state.version).toBe(4);
        expect(await late.backend!.sha256()).toBe(complete.weightsSha256());
        await late.close();
      } finally {
        await complete.close();
      }
    } finally {
      await Promise.all(agents.map((a) => a.close()));
      await first.close();
    }
  });

  it('gives up after giveUpAfterMs without reaching a coordinator, with the last error as the cause', async () => {
    const f = await fixture();
    const agent = agentOn(f, new GrpcTransport({ address: `127.0.0.1:${await freePort()}` }), 0, { onJobEnd: 'leave', giveUpAfterMs: 300 });
    try {
      const error = await agent.run().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(CoordinatorUnreachableError);
      expect((error as Error).cause).toBeInstanceOf(TransportError);
      expect(agent.state.reconnects).toBeGreaterThanOrEqual(1);
      expect(agent.exit).toBeUndefined();
    } finally {
      await agent.close();
    }
  });
});
