/**
 * The agents' side of the fleet benchmark, in its own process: many lightweight agents with their own Session
 * streams, speaking the real protocol through the real transport (gRPC, or NATS on a few shared connections).
 * They hold no model:
 * a Task is answered at once with synthetic scalars that pass the coordinator's checks, an Update only moves
 * the agent's version, a Ping is answered, and heartbeats go out every heartbeat period.
 *
 * Driven over IPC by fleet-bench.ts: 'start' → 'ready'; 'io' → the process's byte counters; 'stop'.
 */
import type { NatsConnection } from 'nats';
import {
  GrpcTransport,
  NatsTransport,
  connectNats,
  type ClientSession,
  type CoordinatorClient,
  type CoordinatorMessage,
  type JoinAccepted,
  type Task,
  type Transport,
} from '../../shared/transport/index.js';
import { processIo } from './harness.js';

export interface FleetChildConfig {
  transport: 'grpc' | 'nats';
  /** gRPC: the coordinator's host:port. NATS: the server URL. */
  address: string;
  /** NATS: the job whose subjects the coordinator listens on. */
  jobId?: string;
  agents: number;
  baseSha256: string;
  /** How many agents join at once while the fleet is set up. */
  joinConcurrency?: number;
  /**
   * gRPC: 'per-agent' is a TCP connection per agent, as separate devices have; 'shared' puts all streams on one
   * connection. NATS: 'shared' is one connection for all agents, a number n spreads them over n connections.
   */
  connections: 'per-agent' | 'shared' | number;
}

export interface IoCounters {
  /** Bytes the process passed through read(2)/write(2): here, nearly all of it socket traffic. */
  readBytes: number;
  writtenBytes: number;
  updates: number;
  tasks: number;
  results: number;
}

const counters = { updates: 0, tasks: 0, results: 0 };

/** A model-free agent: real transport and protocol, synthetic answers. */
export class LightAgent {
  private client: CoordinatorClient | undefined;
  private session: ClientSession | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  version = 0;

  constructor(
    readonly id: string,
    private readonly transport: Transport,
    private readonly baseSha256: string,
  ) {}

  async start(): Promise<JoinAccepted> {
    const client = this.transport.connect({ agentId: this.id, token: '' });
    this.client = client;
    const accepted = await client.join({
      agentId: this.id,
      token: '',
      capabilities: { memoryBytes: 1 << 30, cores: 1, noiseImpl: 'js' },
      baseSha256: this.baseSha256,
      versionHeld: 0,
    });
    this.version = accepted.currentVersion;
    const session = client.session({
      message: (message) => this.onMessage(message),
      invalid: () => undefined,
      closed: () => this.stopHeartbeat(),
    });
    this.session = session;
    this.heartbeat = setInterval(
      () => session.send({ kind: 'heartbeat', heartbeat: { version: this.version, weightsSha256: this.baseSha256 } }),
      accepted.heartbeatMs,
    );
    return accepted;
  }

  private onMessage(message: CoordinatorMessage): void {
    switch (message.kind) {
      case 'ping':
        this.session!.send({ kind: 'pong', nonce: message.nonce });
        return;
      case 'update':
        counters.updates++;
        this.version = message.update.version;
        return;
      case 'task':
        counters.tasks++;
        this.answer(message.task);
        return;
    }
  }

  /** g = (loss+ − loss−)/2ε by construction, so the coordinator's consistency check passes. */
  private answer(task: Task): void {
    const g = task.seeds.map((_, k) => 0.25 - 0.01 * k);
    counters.results++;
    this.session!.send({
      kind: 'result',
      result: {
        round: task.round,
        attempt: task.attempt,
        seeds: task.seeds,
        g,
        lossPlus: g.map((x) => 1 + task.epsilon * x),
        lossMinus: g.map((x) => 1 - task.epsilon * x),
        sampleCount: task.batchSize,
      },
    });
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  close(): void {
    this.stopHeartbeat();
    this.session?.end();
    this.client?.close();
  }
}

const natsConnections: NatsConnection[] = [];

async function transportsFor(config: FleetChildConfig): Promise<(agent: number) => Transport> {
  if (config.transport === 'grpc') {
    // grpc-js shares one connection per target between clients unless each asks for its own.
    const own = config.connections === 'per-agent';
    const shared = new GrpcTransport({ address: config.address });
    return () => (own ? new GrpcTransport({ address: config.address, localSubchannelPool: true }) : shared);
  }
  const count = typeof config.connections === 'number' ? config.connections : 1;
  const transports: Transport[] = [];
  for (let i = 0; i < count; i++) {
    const connection = await connectNats({ servers: config.address, name: `fleet-bench agents ${i}` });
    natsConnections.push(connection);
    transports.push(new NatsTransport({ jobId: config.jobId!, connection }));
  }
  return (agent) => transports[agent % count]!;
}

async function startFleet(config: FleetChildConfig): Promise<LightAgent[]> {
  const transportFor = await transportsFor(config);
  const agents = Array.from({ length: config.agents }, (_, i) => new LightAgent(`light-${i}`, transportFor(i), config.baseSha256));
  const concurrency = config.joinConcurrency ?? 50;
  for (let at = 0; at < agents.length; at += concurrency) await Promise.all(agents.slice(at, at + concurrency).map((a) => a.start()));
  return agents;
}

if (process.send !== undefined) {
  let fleet: LightAgent[] = [];
  process.on('message', (message: { cmd: 'start'; config: FleetChildConfig } | { cmd: 'io' } | { cmd: 'stop' }) => {
    switch (message.cmd) {
      case 'start':
        startFleet(message.config).then(
          (agents) => {
            fleet = agents;
            process.send!({ kind: 'ready', agents: agents.length });
          },
          (err: unknown) => process.send!({ kind: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
        );
        return;
      case 'io':
        process.send!({ kind: 'io', io: { ...processIo(), ...counters } satisfies IoCounters });
        return;
      case 'stop':
        fleet.forEach((a) => a.close());
        void Promise.all(natsConnections.map((c) => c.close())).finally(() => process.send!({ kind: 'stopped' }, () => process.exit(0)));
        return;
    }
  });
}
