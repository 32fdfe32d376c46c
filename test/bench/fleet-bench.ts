/**
 * Fleet benchmark. gRPC (coordinator targets): rounds per second with 1,000 agent streams on loopback (target
 * ≥ 30), and bytes on the wire per agent per round with one seed per round (target ≤ 200 B). NATS (fleet-scale
 * targets): rounds per second with 1,000 and 10,000 agents through a local nats-server (≥ 200 and ≥ 25), the
 * log in a JetStream stream.
 *
 * The coordinator runs in this process with a durable (fdatasync'd) log; the agents — lightweight, model-free,
 * but on the real transport and protocol, each on its own connection — run in one child process, so the
 * coordinator's process is measured on its own. Bytes are counted at the system-call boundary: the read(2) and
 * write(2) totals of the agents' process (/proc/self/io), which is nearly all socket traffic there — HTTP/2
 * and gRPC framing included — divided by the updates the agents received (one per agent per round).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Coordinator } from '../../coordinator/index.js';
import { UpdateLog, openJetStreamLog } from '../../shared/log/index.js';
import { logger } from '../../shared/logger.js';
import { slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { GrpcTransport, NatsTransport, connectNats, type Transport } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../simulation/local-nats-server.js';
import { hostInfo, processIo, type SuiteResult } from './harness.js';
import type { FleetChildConfig, IoCounters } from './fleet-agents-child.js';

const CHILD = fileURLToPath(new URL('./fleet-agents-child.js', import.meta.url));

export interface FleetBenchOptions {
  agents?: number;
  agentsPerRound?: number;
  warmupRounds?: number;
  rounds?: number;
  /** Append to an fdatasync'd file (default) or keep the log in memory. */
  durableLog?: boolean;
  /** Fleet sizes for the NATS runs (default 1,000 and 10,000; none when nats-server is missing). */
  natsAgents?: number[];
}

type ChildReply = { kind: 'ready'; agents: number } | { kind: 'io'; io: IoCounters } | { kind: 'error'; error: string } | { kind: 'stopped' };

class AgentsProcess {
  private readonly child: ChildProcess;
  private waiting: Array<(reply: ChildReply) => void> = [];
  private failure: Error | undefined;

  constructor() {
    if (!existsSync(CHILD)) throw new Error(`${CHILD} not found: run benchmarks from the compiled tree (npm run build, then npm run bench)`);
    this.child = fork(CHILD, [], { env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (reply: ChildReply) => {
      if (reply.kind === 'error') this.failure = new Error(`fleet agents failed: ${reply.error}`);
      this.waiting.shift()?.(reply);
    });
    this.child.on('exit', (code) => {
      this.failure ??= new Error(`the fleet agents' process exited (code ${code})`);
      for (const wake of this.waiting.splice(0)) wake({ kind: 'error', error: this.failure.message });
    });
  }

  private ask(message: object): Promise<ChildReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push((reply) => (reply.kind === 'error' ? reject(new Error(reply.error)) : resolve(reply)));
      this.child.send(message);
    });
  }

  async start(config: FleetChildConfig): Promise<void> {
    await this.ask({ cmd: 'start', config });
  }

  async io(): Promise<IoCounters> {
    const reply = await this.ask({ cmd: 'io' });
    if (reply.kind !== 'io') throw new Error(`unexpected reply ${reply.kind}`);
    return reply.io;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ask({ cmd: 'stop' }).catch(() => undefined);
    await exited;
  }
}

interface RunFigures {
  transport: FleetChildConfig['transport'];
  agents: number;
  connections: FleetChildConfig['connections'];
  roundsPerSecond: number;
  meanRoundWallMs: number;
  setupMs: number;
  bytesPerAgentRound: number;
  downBytesPerAgentRound: number;
  upBytesPerAgentRound: number;
  coordinatorIoBytesPerAgentRound: number;
  /** The coordinator's count of protobuf bytes per agent per round (Listener.traffic), both directions. */
  protocolBytesPerAgentRound: number;
  failedAttempts: number;
}

/** One configuration: a fresh log, coordinator and fleet; warm-up rounds, then the measured ones. */
async function runFleet(
  transportKind: FleetChildConfig['transport'],
  connections: FleetChildConfig['connections'],
  settings: { agents: number; agentsPerRound: number; warmupRounds: number; rounds: number; durableLog: boolean },
): Promise<RunFigures> {
  const { agents, agentsPerRound, warmupRounds, rounds, durableLog } = settings;
  const work = mkdtempSync(join(tmpdir(), 'mezo-bench-fleet-'));
  const base = new Float32Array(64).map((_, i) => Math.sin(i));
  const header = { jobId: 'fleet-bench', baseSha256: slabSha256(base), distribution: 'gaussian' as const, decayRanges: [] };
  let server: NatsServer | undefined;
  let transport: Transport;
  let log: UpdateLog;
  let closeNats = async (): Promise<void> => undefined;
  if (transportKind === 'nats') {
    server = await startNatsServer();
    // The NATS deployment's log: a JetStream stream, each append acknowledged before the broadcast.
    const logConnection = await connectNats({ servers: server.url, name: 'fleet-bench log' });
    log = await openJetStreamLog({ connection: logConnection, header });
    transport = new NatsTransport({ jobId: header.jobId, servers: server.url });
    closeNats = async () => {
      await logConnection.close();
      await server!.stop(true);
    };
  } else {
    log = durableLog ? await UpdateLog.open(join(work, 'update.log'), header) : UpdateLog.inMemory(header);
    transport = new GrpcTransport({ address: '127.0.0.1:0' });
  }
  const roundWallMs: number[] = [];
  let measuredFrom: { at: number; agents: Promise<IoCounters>; coordinator: ReturnType<typeof processIo> } | undefined;
  const fleet = new AgentsProcess();
  const coordinator = new Coordinator({
    log,
    baseSlab: base,
    engine: noise,
    transport,
    options: {
      jobId: 'fleet-bench',
      rounds: warmupRounds + rounds,
      deadlineMs: 2000,
      waitForAgentsMs: 60_000,
      // The agents hold no weights, so there is nothing to audit their heartbeats against.
      audit: false,
      strategy: { agentsPerRound, seedsPerAgent: 1, seedMode: 'shared', schedule: { lr: 1e-3 }, seed: 1 },
    },
    onRound: (report) => {
      if (measuredFrom) roundWallMs.push(report.wallMs);
      if (report.version === warmupRounds) measuredFrom = { at: performance.now(), agents: fleet.io(), coordinator: processIo() };
    },
  });
  try {
    const address = await coordinator.listen();
    const setupStarted = performance.now();
    await fleet.start({
      transport: transportKind,
      address: server?.url ?? address,
      jobId: header.jobId,
      agents,
      baseSha256: slabSha256(base),
      connections,
      joinConcurrency: transportKind === 'nats' ? 200 : 50,
    });
    while (coordinator.connectedAgents().length < agents) await new Promise((r) => setTimeout(r, 20));
    const setupMs = performance.now() - setupStarted;

    const report = await coordinator.run();
    const endedAt = performance.now();
    const coordinatorEnd = processIo();
    if (!measuredFrom || report.version !== warmupRounds + rounds) throw new Error(`the run ended at version ${report.version}`);
    // Let the last broadcast arrive before reading the agents' counters.
    const expectedUpdates = agents * (warmupRounds + rounds);
    let agentsEnd = await fleet.io();
    for (let i = 0; i < 100 && agentsEnd.updates < expectedUpdates; i++) {
      await new Promise((r) => setTimeout(r, 20));
      agentsEnd = await fleet.io();
    }
    const agentsStart = await measuredFrom.agents;
    const updates = agentsEnd.updates - agentsStart.updates;
    const down = agentsEnd.readBytes - agentsStart.readBytes;
    const up = agentsEnd.writtenBytes - agentsStart.writtenBytes;
    const coordinatorIo =
      coordinatorEnd.readBytes - measuredFrom.coordinator.readBytes + (coordinatorEnd.writtenBytes - measuredFrom.coordinator.writtenBytes);
    const protocolBytes = [...coordinator.traffic().values()].reduce((sum, t) => sum + t.bytesUp + t.bytesDown, 0);
    return {
      transport: transportKind,
      agents,
      connections,
      protocolBytesPerAgentRound: protocolBytes / (agents * (warmupRounds + rounds)),
      roundsPerSecond: rounds / ((endedAt - measuredFrom.at) / 1000),
      meanRoundWallMs: roundWallMs.reduce((a, b) => a + b, 0) / roundWallMs.length,
      setupMs,
      bytesPerAgentRound: (down + up) / updates,
      downBytesPerAgentRound: down / updates,
      upBytesPerAgentRound: up / updates,
      coordinatorIoBytesPerAgentRound: coordinatorIo / (agents * rounds),
      failedAttempts: report.failedAttempts,
    };
  } finally {
    await coordinator.close(500).catch(() => undefined);
    await fleet.stop();
    await closeNats();
    rmSync(work, { recursive: true, force: true });
  }
}

export async function benchFleet(options: FleetBenchOptions = {}): Promise<SuiteResult> {
  const settings = {
    agents: options.agents ?? 1000,
    agentsPerRound: options.agentsPerRound ?? 16,
    warmupRounds: options.warmupRounds ?? 30,
    rounds: options.rounds ?? Number(process.env.MEZO_BENCH_FLEET_ROUNDS ?? 300),
    durableLog: options.durableLog ?? true,
  };
  const natsAgents = natsServerPath() ? (options.natsAgents ?? [1000, 10_000]) : [];
  const level = logger.level;
  logger.level = 'warn';
  const runs: RunFigures[] = [];
  try {
    for (const connections of ['shared', 'per-agent'] as const) runs.push(await runFleet('grpc', connections, settings));
    // The agents' process spreads its agents over a few NATS connections (one per 500 agents), as a gateway or a
    // leaf node would; the coordinator side is what is measured.
    for (const agents of natsAgents) runs.push(await runFleet('nats', Math.max(1, Math.ceil(agents / 500)), { ...settings, agents }));
  } finally {
    logger.level = level;
  }
  const label = (r: RunFigures): string =>
    r.transport === 'nats'
      ? `NATS, ${r.agents} agents`
      : `gRPC, ${r.agents} streams, ${r.connections === 'shared' ? 'one connection' : 'one connection per agent'}`;
  const targets = runs.flatMap((r) =>
    r.transport === 'nats'
      ? [{ target: `rounds/s, ${label(r)}`, value: r.roundsPerSecond, goal: r.agents >= 10_000 ? '≥ 25' : '≥ 200', met: r.roundsPerSecond >= (r.agents >= 10_000 ? 25 : 200) }]
      : [
          { target: `rounds/s, ${label(r)}`, value: r.roundsPerSecond, goal: '≥ 30', met: r.roundsPerSecond >= 30 },
          { target: `bytes/agent/round (1 seed), ${label(r)}`, value: r.bytesPerAgentRound, goal: '≤ 200', met: r.bytesPerAgentRound <= 200 },
        ],
  );
  return {
    suite: 'fleet',
    date: new Date().toISOString(),
    host: hostInfo(),
    config: { ...settings, natsAgents, seedsPerRound: 1 },
    runs,
    targets,
    table: [
      ...targets.map((t) => ({ metric: t.target, value: t.value, goal: t.goal, met: t.met ? 'yes' : 'NO' })),
      ...runs.flatMap((r) => [
        ...(r.transport === 'grpc'
          ? [
              { metric: `coordinator→agent B/agent/round, ${label(r)}`, value: r.downBytesPerAgentRound, goal: '', met: '' },
              { metric: `agent→coordinator B/agent/round, ${label(r)}`, value: r.upBytesPerAgentRound, goal: '', met: '' },
            ]
          : []),
        { metric: `protobuf B/agent/round (coordinator's count), ${label(r)}`, value: r.protocolBytesPerAgentRound, goal: '', met: '' },
        { metric: `round (tasks out → commit) mean ms, ${label(r)}`, value: r.meanRoundWallMs, goal: '', met: '' },
        { metric: `fleet set-up ms, ${label(r)}`, value: r.setupMs, goal: '', met: '' },
      ]),
    ],
  };
}

// `node dist/test/bench/fleet-bench.js` runs the suite on its own.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { report } = await import('./harness.js');
  report(await benchFleet());
}
