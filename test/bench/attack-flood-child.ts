/**
 * The attacker of the attack benchmark, in its own process (so the coordinator's process is measured on its
 * own): for a given time it sends Joins with made-up ids and wrong tokens as fast as `concurrency` calls in
 * flight allow, and between them malformed messages — bytes that are not protobuf, and well-formed messages
 * with invalid fields — on the transport's request and session subjects. Driven over IPC by attack-bench.ts:
 * 'start' → 'started' … 'done' with the counts.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect, headers as natsHeaders } from 'nats';
import { GrpcTransport, NatsTransport, jobSubjects, type JoinRequest, type Transport } from '../../shared/transport/index.js';

export interface FloodConfig {
  transport: 'grpc' | 'nats';
  /** gRPC host:port, or the NATS server URL. */
  address: string;
  jobId: string;
  baseSha256: string;
  durationMs: number;
  concurrency: number;
  /** One malformed message after every this many refused Joins. */
  malformedEvery: number;
  /** Refused Joins per second at most (0: as fast as the calls in flight allow). */
  ratePerSecond: number;
}

export interface FloodCounts {
  joins: number;
  /** Joins the coordinator accepted (the target is none). */
  joinsAccepted: number;
  /** Refusals by status name. */
  refusals: Record<string, number>;
  malformed: number;
  /** Malformed messages answered with success (the target is none). */
  malformedAccepted: number;
  elapsedMs: number;
  /** CPU seconds this process used per second of the storm. */
  cpu: number;
}

type Command = { kind: 'start'; config: FloodConfig };

async function flood(config: FloodConfig): Promise<FloodCounts> {
  const counts: FloodCounts = { joins: 0, joinsAccepted: 0, refusals: {}, malformed: 0, malformedAccepted: 0, elapsedMs: 0, cpu: 0 };
  const cpu0 = process.cpuUsage();
  const nc = config.transport === 'nats' ? await connect({ servers: config.address }) : undefined;
  // One connection for every made-up agent (as one machine would flood), over either transport.
  const transport: Transport = nc
    ? new NatsTransport({ jobId: config.jobId, connection: nc, callTimeoutMs: 10_000 })
    : new GrpcTransport({ address: config.address, callTimeoutMs: 10_000 });
  const raw = nc ? undefined : new grpc.Client(config.address, grpc.credentials.createInsecure());
  const subjects = jobSubjects(config.jobId);
  const identity = (b: Buffer): Buffer => b;

  const malformed = async (n: number): Promise<void> => {
    counts.malformed++;
    const garbage = randomBytes(8 + (n % 120));
    if (raw) {
      // Bytes that are not a JoinRequest, straight onto the Join method.
      const ok = await new Promise<boolean>((resolve) =>
        raw.makeUnaryRequest('/mezo.v1.Coordinator/Join', identity, identity, garbage, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => resolve(!err)),
      );
      if (ok) counts.malformedAccepted++;
      return;
    }
    // NATS: garbage on a request subject (answered with a status) and on a session uplink (dropped).
    const h = natsHeaders();
    h.set('Mezo-Session', `S${n}`);
    const reply = await nc!.request(subjects.rpc(`agent-${n % 4}`, n % 2 === 0 ? 'join' : 'session'), garbage, { headers: h, timeout: 10_000 }).catch(() => undefined);
    const status = reply?.headers?.get('Mezo-Status') ?? '';
    if (reply && (status === '' || status === 'OK')) counts.malformedAccepted++;
    nc!.publish(subjects.up(`agent-${n % 4}`, `S${n}`), garbage);
  };

  const started = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    // gRPC: a Join names its agent in the request, so one client per worker sends every made-up id. NATS: the
    // subject names the agent, so each id needs its own client (all on the one connection).
    const shared = nc ? undefined : transport.connect({ agentId: 'forged', token: 'guess' });
    while (Date.now() - started < config.durationMs) {
      const n = next++;
      if (config.ratePerSecond > 0) {
        const due = started + (n * 1000) / config.ratePerSecond;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        if (Date.now() - started >= config.durationMs) break;
      }
      if (n % config.malformedEvery === 0) await malformed(n);
      const agentId = `forged-${n}`;
      const client = shared ?? transport.connect({ agentId, token: `guess-${n}` });
      const request: JoinRequest = { agentId, token: `guess-${n}`, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: config.baseSha256, versionHeld: 0 };
      counts.joins++;
      try {
        await client.join(request);
        counts.joinsAccepted++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERROR';
        counts.refusals[code] = (counts.refusals[code] ?? 0) + 1;
      } finally {
        if (!shared) client.close();
      }
    }
    shared?.close();
  };
  await Promise.all(Array.from({ length: config.concurrency }, () => worker()));
  counts.elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpu0);
  counts.cpu = (cpu.user + cpu.system) / 1e6 / (counts.elapsedMs / 1000);
  raw?.close();
  await nc?.close();
  return counts;
}

process.on('message', (command: Command) => {
  if (command.kind !== 'start') return;
  process.send!({ kind: 'started' });
  flood(command.config).then(
    (counts) => process.send!({ kind: 'done', counts }, () => process.exit(0)),
    (err: Error) => process.send!({ kind: 'error', error: err.message }, () => process.exit(1)),
  );
});
