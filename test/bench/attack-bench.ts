/**
 * Attack benchmark: what an attacker can take from a job, in one run.
 *
 * - Kills: the compiled `mezo coordinator` (gRPC, file log) is SIGKILLed at random moments while two agents
 *   train against it, and restarted on the same log and port; after each kill every agent must hold no more
 *   than the restarted log's head, and exactly its entries (nothing an agent saw is lost).
 * - Storms, per transport (gRPC; NATS when nats-server is installed): a job with per-agent tokens and four
 *   honest agents runs; honest rounds/s are measured before, during and after a storm of Joins with made-up
 *   ids and wrong tokens mixed with malformed messages (one per ten Joins), sent at up to 300 Joins/s by a
 *   separate process at nice 10 (it stands in for another machine; target: during ≥ 0.8 × the mean of before
 *   and after), with the coordinator process's CPU and RSS, and what the storm left behind (traffic counters,
 *   agent records, the authentication failure table). The host's load average is reported with them: on a
 *   small shared host, rounds/s move with everything else that runs there.
 * - Forgeries: over NATS on a server without per-agent permissions, an eavesdropper reads every task and
 *   publishes a result for it first, plus session ends and replays of the agents' own messages; over gRPC,
 *   sessions opened with an honest agent's id and a wrong token send results. Target: nothing accepted.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { Coordinator, type RoundReport } from '../../coordinator/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import { LogSigner, UpdateLog } from '../../shared/log/index.js';
import { rngFor } from '../../shared/data/rng.js';
import { logger } from '../../shared/logger.js';
import { defaultTask, loadDefaultModel, type DefaultTask, type PreparedModel } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import {
  GrpcTransport,
  NatsTransport,
  decodeCoordinatorMessage,
  encodeAgentMessage,
  encodeCoordinatorMessage,
  jobSubjects,
  loadProtocol,
  type Listener,
  type Transport,
} from '../../shared/transport/index.js';
import { freePort, natsServerPath, startNatsServer, type NatsServer } from '../../simulation/local-nats-server.js';
import { hostInfo, type SuiteResult } from './harness.js';
import type { FloodConfig, FloodCounts } from './attack-flood-child.js';

const FLOOD_CHILD = fileURLToPath(new URL('./attack-flood-child.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/mezo.js', import.meta.url));
const FORGED_G = 777.25;
/** The attacker process's nice value. */
const ATTACKER_NICE = 10;

export interface AttackBenchOptions {
  kills?: number;
  /** Length of each measuring window (before, during and after a storm), ms. */
  windowMs?: number;
  /** Refused Joins in flight at once during a storm. */
  concurrency?: number;
  /** Refused Joins per second during a storm (0: as fast as they go). */
  ratePerSecond?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`attack bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** RSS and the JavaScript heap in use, after a full collection when the process runs with --expose-gc. */
function memoryMiB(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { rss: mib(rss), heap: mib(heapUsed) };
}

function honestAgent(prepared: PreparedModel, task: DefaultTask, index: number, transport: Transport, token: string, logPublicKey?: string): Agent {
  return new Agent({
    agentId: `agent-${index}`,
    token,
    ...(logPublicKey ? { logPublicKey } : {}),
    transport,
    prepared,
    createBackend: (distribution) => createAgentBackend(prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
    data: task.agents[index]!,
    dataSeed: index,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
  });
}

// ---- kills ----

interface KillOutcome {
  kills: number;
  survived: number;
  finalVersion: number;
  agentsAtHead: number;
}

async function killsPart(prepared: PreparedModel, task: DefaultTask, kills: number): Promise<KillOutcome> {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: build first (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'mezo-attack-kills-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const logPath = join(dir, 'update.log');
  const jobId = 'attack-kills';
  const children: ChildProcess[] = [];
  const start = (): { child: ChildProcess; stderr: () => string; exited: Promise<unknown> } => {
    const child = spawn(process.execPath, [CLI, 'coordinator', '--listen', address, '--log', logPath, '--job-id', jobId, '--rounds', '100000',
      '--agents-per-round', '2', '--seeds-per-agent', '1', '--deadline-ms', '10000', '--heartbeat-ms', '100', '--batch-size', '16', '--lr', '0.001', '--seed', '5'],
    { env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return { child, stderr: () => stderr, exited: new Promise((resolve) => child.on('exit', resolve)) };
  };
  const listeningAt = (stderr: string): number | undefined => {
    const match = /listening on \S+, log at version (\d+)/.exec(stderr);
    return match ? Number(match[1]) : undefined;
  };
  // Seeded, so the kill moments of a run can be repeated.
  const random = rngFor(20261207n, 'attack-kills');
  const agents = [0, 1].map((i) => honestAgent(prepared, task, i, new GrpcTransport({ address }), ''));
  const runs = agents.map((a) => a.run().catch(() => undefined));
  const seen: Array<{ version: number; headHash: string | undefined }> = [];
  let survived = 0;
  let current = start();
  try {
    await until(() => listeningAt(current.stderr()) !== undefined, 30_000, 'the coordinator to listen');
    for (let k = 0; k < kills; k++) {
      // A random moment: anywhere from mid-reconnect to many rounds in.
      await sleep(200 + random.nextBelow(1800));
      current.child.kill('SIGKILL');
      await current.exited;
      const held = agents.map((a) => ({ version: a.state.version, headHash: a.state.headHash }));
      seen.push(...held);
      current = start();
      await until(() => listeningAt(current.stderr()) !== undefined, 30_000, 'the restarted coordinator to listen');
      const head = listeningAt(current.stderr())!;
      if (held.every((h) => h.version <= head)) survived++;
    }
    await sleep(1500);
    current.child.kill('SIGTERM');
    await current.exited;
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  const log = await UpdateLog.open(logPath, { jobId, baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian', decayRanges: [] });
  const entries = log.entries();
  // Every (version, head) an agent held at a kill is a prefix of the final log: nothing it saw was lost.
  const lost = seen.filter((s) => s.version > entries.length || (s.version > 0 && entries[s.version - 1]!.hash !== s.headHash));
  if (lost.length > 0) survived = Math.max(0, survived - lost.length);
  const finalVersion = log.version;
  const agentsAtHead = agents.filter((a) => a.state.version <= finalVersion && (a.state.version === 0 || entries[a.state.version - 1]!.hash === a.state.headHash)).length;
  await log.close();
  await Promise.all(agents.map((a) => a.close()));
  await Promise.all(runs);
  rmSync(dir, { recursive: true, force: true });
  return { kills, survived, finalVersion, agentsAtHead };
}

// ---- storms and forgeries ----

interface StormOutcome {
  transport: 'grpc' | 'nats';
  roundsPerSecBefore: number;
  roundsPerSecDuring: number;
  roundsPerSecAfter: number;
  /** The coordinator process's CPU time per second of wall time, before and during the storm. */
  cpuBefore: number;
  cpuDuring: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
  /** Heap growth over the quiet window before the storm, for comparison (rounds commit in both). */
  heapQuietGrowthMiB: number;
  flood: FloodCounts;
  trafficEntries: number;
  agentRecords: number;
  auth: ReturnType<Coordinator['authFailures']>;
  forgeriesSent: number;
  forgeriesAccepted: number;
  /** NATS: updates that hash and chain onto the head but are signed by another key (or not at all). */
  forgedUpdatesSent: number;
  /** Agents whose head left the coordinator's log (the target is none), and updates the agents dropped. */
  forgedUpdatesAccepted: number;
  updatesRejected: number;
}

function runFlood(config: FloodConfig): { started: Promise<void>; done: Promise<FloodCounts> } {
  if (!existsSync(FLOOD_CHILD)) throw new Error(`${FLOOD_CHILD} not found: build first (npm run build)`);
  const child = fork(FLOOD_CHILD, [], { env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // The attacker stands in for another machine: on a small shared host it must not take the coordinator's CPU
  // (which would measure the host, not the coordinator), so it runs at a lower priority.
  try {
    setPriority(child.pid!, ATTACKER_NICE);
  } catch {
    // Not permitted here: the storm still runs, at normal priority.
  }
  let started!: () => void;
  const startedP = new Promise<void>((resolve) => (started = resolve));
  const done = new Promise<FloodCounts>((resolve, reject) => {
    child.on('message', (m: { kind: string; counts?: FloodCounts; error?: string }) => {
      if (m.kind === 'started') started();
      else if (m.kind === 'done') resolve(m.counts!);
      else if (m.kind === 'error') reject(new Error(`attack flood failed: ${m.error}`));
    });
    child.on('exit', (code) => reject(new Error(`the flood process exited (code ${code})`)));
  });
  child.send({ kind: 'start', config });
  return { started: startedP, done };
}

/** Over NATS: reads every task on the downlinks and publishes a forged result, a forged end and garbage first. */
function natsForger(nc: NatsConnection, jobId: string): { sent: () => number; stop: () => void } {
  const subjects = jobSubjects(jobId);
  const session = loadProtocol().coordinator.service.Session!;
  let sent = 0;
  const down = nc.subscribe(subjects.downAll, {
    callback: (_err, msg) => {
      let message;
      try {
        message = decodeCoordinatorMessage(session.responseDeserialize(Buffer.from(msg.data)));
      } catch {
        return;
      }
      if (message.kind !== 'task') return;
      const up = msg.subject.replace('.down.', '.up.');
      const { round, attempt, seeds, epsilon } = message.task;
      const result = { round, attempt, seeds, g: seeds.map(() => FORGED_G), lossPlus: seeds.map(() => 1 + FORGED_G * epsilon), lossMinus: seeds.map(() => 1 - FORGED_G * epsilon), sampleCount: 1 };
      nc.publish(up, session.requestSerialize(encodeAgentMessage({ kind: 'result', result })));
      const h = natsHeaders();
      h.set('Mezo-Seq', '1');
      h.set('Mezo-Mac', 'A'.repeat(43));
      nc.publish(up, session.requestSerialize(encodeAgentMessage({ kind: 'result', result })), { headers: h });
      const end = natsHeaders();
      end.set('Mezo-Control', 'end');
      nc.publish(up, new Uint8Array(0), { headers: end });
      sent += 3;
    },
  });
  // The agents' own uplink messages, played again.
  const upSub = nc.subscribe(subjects.upAll, {
    callback: (_err, msg) => {
      if (!msg.headers?.has('Mezo-Mac') || msg.headers.get('Mezo-Replay') === '1') return;
      const h = natsHeaders();
      for (const [key, values] of msg.headers) for (const v of values) h.append(key, v);
      h.set('Mezo-Replay', '1');
      nc.publish(msg.subject, msg.data, { headers: h });
      sent++;
    },
  });
  return { sent: () => sent, stop: () => (down.unsubscribe(), upSub.unsubscribe()) };
}

async function stormPart(kind: 'grpc' | 'nats', prepared: PreparedModel, task: DefaultTask, windowMs: number, concurrency: number, ratePerSecond: number): Promise<StormOutcome> {
  const jobId = `attack-${kind}`;
  const tokens = Object.fromEntries([0, 1, 2, 3].map((i) => [`agent-${i}`, `honest-token-${i}`]));
  let server: NatsServer | undefined;
  let coordinatorNc: NatsConnection | undefined;
  let forgerNc: NatsConnection | undefined;
  let inner: Transport;
  if (kind === 'nats') {
    server = await startNatsServer();
    coordinatorNc = await connect({ servers: server.url });
    inner = new NatsTransport({ jobId, connection: coordinatorNc });
  } else {
    inner = new GrpcTransport({ address: '127.0.0.1:0' });
  }
  let listener: Listener | undefined;
  const transport: Transport = { listen: async (h) => (listener = await inner.listen(h)), connect: (c) => inner.connect(c) };
  const header = { jobId, baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian' as const, decayRanges: [] };
  const signer = LogSigner.generate();
  const log = UpdateLog.inMemory(header, { signer });
  const coordinator = new Coordinator({
    log,
    baseSlab: prepared.slab,
    engine: noise,
    transport,
    options: { jobId, rounds: 1_000_000, deadlineMs: 10_000, heartbeatMs: 1000, batchSize: 16, tokens, strategy: { agentsPerRound: 4, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 } },
  });
  const address = await coordinator.listen();
  const reports: RoundReport[] = [];
  coordinator.onRound((r) => reports.push(r));
  const agentTransport = (): Transport => (kind === 'nats' ? new NatsTransport({ jobId, servers: server!.url }) : new GrpcTransport({ address }));
  const agents = [0, 1, 2, 3].map((i) => honestAgent(prepared, task, i, agentTransport(), tokens[`agent-${i}`]!, signer.publicKey));
  const runs = agents.map((a) => a.run().catch(() => undefined));
  const loop = coordinator.run().catch((err: Error) => logger.warn({ err: err.message }, 'attack bench: the round loop failed'));
  try {
    await until(() => reports.length >= 20, 120_000, 'the honest fleet to warm up');
    const rate = async (ms: number): Promise<number> => {
      const from = reports.length;
      const t0 = performance.now();
      await sleep(ms);
      return (reports.length - from) / ((performance.now() - t0) / 1000);
    };
    const cpuSeconds = (): number => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    };
    const memQuiet = memoryMiB();
    const cpu0 = cpuSeconds();
    const w0 = performance.now();
    const before = await rate(windowMs);
    const cpuBefore = (cpuSeconds() - cpu0) / ((performance.now() - w0) / 1000);
    const memBefore = memoryMiB();
    const flood = runFlood({
      transport: kind,
      address: kind === 'nats' ? server!.url : address,
      jobId,
      baseSha256: prepared.manifest.slabSha256,
      durationMs: windowMs,
      concurrency,
      malformedEvery: 10,
      ratePerSecond,
    });
    await flood.started;
    const from = reports.length;
    const t0 = performance.now();
    const cpu1 = cpuSeconds();
    const counts = await flood.done;
    const stormSeconds = (performance.now() - t0) / 1000;
    const during = (reports.length - from) / stormSeconds;
    const cpuDuring = (cpuSeconds() - cpu1) / stormSeconds;
    const memAfter = memoryMiB();
    const after = await rate(windowMs);

    // Forgeries: results with a value no honest agent computes.
    let forgeriesSent = 0;
    let forgedUpdatesSent = 0;
    const firstForgedRound = reports.length;
    if (kind === 'nats') {
      forgerNc = await connect({ servers: server!.url });
      const forger = natsForger(forgerNc, jobId);
      // Forged updates: the log so far, copied and extended by one entry under another key (and unsigned).
      const updateBytes = (update: Parameters<typeof encodeCoordinatorMessage>[0] & { kind: 'update' }): Uint8Array =>
        loadProtocol().coordinator.service.Session!.responseSerialize(encodeCoordinatorMessage(update));
      const other = LogSigner.generate();
      for (let k = 0; k < 4; k++) {
        await sleep(windowMs / 4);
        const copy = UpdateLog.inMemory(header, { signer: other });
        for (const e of coordinator.log.entries()) {
          if (e.kind === 'rebase') await copy.appendRebase({ round: e.round });
          else await copy.append({ round: e.round, lr: e.lr, decay: e.decay, terms: e.terms });
        }
        const fake = await copy.append({ round: coordinator.nextRound, lr: 1, terms: [{ seed: 666n, coeff: 0.5 }] });
        const { signature: _signature, ...unsigned } = fake;
        forgerNc.publish(jobSubjects(jobId).updates, updateBytes({ kind: 'update', update: fake }));
        forgerNc.publish(jobSubjects(jobId).updates, updateBytes({ kind: 'update', update: unsigned }));
        forgedUpdatesSent += 2;
      }
      forger.stop();
      forgeriesSent = forger.sent();
    } else {
      const attempts = Array.from({ length: 200 }, async (_, n) => {
        const client = new GrpcTransport({ address }).connect({ agentId: `agent-${n % 4}`, token: 'stolen-guess' });
        await new Promise<void>((resolve) => {
          const s = client.session({ message: () => undefined, invalid: () => undefined, closed: () => resolve() });
          const seeds = [BigInt(n + 1)];
          s.send({ kind: 'result', result: { round: reports.length, attempt: 0, seeds, g: [FORGED_G], lossPlus: [1 + FORGED_G * 1e-3], lossMinus: [1 - FORGED_G * 1e-3], sampleCount: 1 } });
        });
        client.close();
      });
      forgeriesSent = attempts.length;
      await Promise.all(attempts);
    }
    await sleep(500);
    const offLog = agents.filter((a) => a.state.version > 0 && coordinator.log.entries(a.state.version - 1, a.state.version)[0]?.hash !== a.state.headHash).length;
    const updatesRejected = agents.reduce((n, a) => n + a.state.updatesRejected, 0);
    const forgeriesAccepted = reports.slice(firstForgedRound).reduce((n, r) => n + r.scalars.filter((s) => s.g.includes(FORGED_G)).length, 0);
    return {
      transport: kind,
      roundsPerSecBefore: before,
      roundsPerSecDuring: during,
      roundsPerSecAfter: after,
      cpuBefore,
      cpuDuring,
      rssBeforeMiB: memBefore.rss,
      rssAfterMiB: memAfter.rss,
      heapBeforeMiB: memBefore.heap,
      heapAfterMiB: memAfter.heap,
      heapQuietGrowthMiB: Math.round((memBefore.heap - memQuiet.heap) * 10) / 10,
      flood: counts,
      trafficEntries: (listener?.traffic().size ?? 0),
      agentRecords: coordinator.agentStatuses().length,
      auth: coordinator.authFailures(),
      forgeriesSent,
      forgeriesAccepted,
      forgedUpdatesSent,
      forgedUpdatesAccepted: offLog,
      updatesRejected,
    };
  } finally {
    coordinator.stop();
    await loop;
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(runs);
    await coordinator.close();
    await forgerNc?.close();
    await coordinatorNc?.close();
    await server?.stop(true);
  }
}

export async function benchAttack(options: AttackBenchOptions = {}): Promise<SuiteResult> {
  const windowMs = options.windowMs ?? 8000;
  const concurrency = options.concurrency ?? 64;
  const ratePerSecond = options.ratePerSecond ?? 300;
  const prepared = await loadDefaultModel();
  const task = defaultTask({ numAgents: 4, seed: 7, perAgent: 300 });
  const loadAtStart = loadavg()[0]!;
  const level = logger.level;
  logger.level = 'silent';
  try {
    const kills = await killsPart(prepared, task, options.kills ?? 6);
    const storms = [await stormPart('grpc', prepared, task, windowMs, concurrency, ratePerSecond)];
    if (natsServerPath()) storms.push(await stormPart('nats', prepared, task, windowMs, concurrency, ratePerSecond));
    const table: Array<Record<string, string | number>> = [
      { measure: 'coordinator kills survived, nothing lost', value: `${kills.survived} / ${kills.kills}`, target: 'all' },
      { measure: 'agents holding a prefix of the final log', value: `${kills.agentsAtHead} / 2 (log at ${kills.finalVersion})`, target: 'all' },
    ];
    for (const s of storms) {
      const t = s.transport;
      const refused = Object.entries(s.flood.refusals).map(([k, v]) => `${k} ${v}`).join(', ');
      table.push(
        { measure: `${t}: refused Joins sent (distinct made-up ids)`, value: `${s.flood.joins} in ${(s.flood.elapsedMs / 1000).toFixed(1)} s (${refused})`, target: '' },
        { measure: `${t}: Joins accepted from the storm`, value: s.flood.joinsAccepted, target: 0 },
        { measure: `${t}: malformed messages sent / accepted`, value: `${s.flood.malformed} / ${s.flood.malformedAccepted}`, target: 'accepted 0' },
        { measure: `${t}: honest rounds/s before / during / after`, value: `${s.roundsPerSecBefore.toFixed(1)} / ${s.roundsPerSecDuring.toFixed(1)} / ${s.roundsPerSecAfter.toFixed(1)}`, target: '' },
        // Against the mean of the windows either side, so a machine whose load drifts is not read as the storm.
        { measure: `${t}: during / mean(before, after)`, value: Math.round((s.roundsPerSecDuring / ((s.roundsPerSecBefore + s.roundsPerSecAfter) / 2)) * 100) / 100, target: '≥ 0.8' },
        { measure: `${t}: coordinator CPU before / during (s per s)`, value: `${s.cpuBefore.toFixed(2)} / ${s.cpuDuring.toFixed(2)}`, target: '' },
        { measure: `${t}: attacker CPU (s per s, at nice ${ATTACKER_NICE})`, value: s.flood.cpu.toFixed(2), target: '' },
        { measure: `${t}: coordinator RSS before / after the storm`, value: `${s.rssBeforeMiB} / ${s.rssAfterMiB} MiB`, target: '' },
        { measure: `${t}: JS heap in use before / after (after a full GC)`, value: `${s.heapBeforeMiB} / ${s.heapAfterMiB} MiB`, target: '' },
        // Rounds commit all along (the in-memory log grows, the bench keeps every round's report): a quiet window
        // of the same length shows that growth without a storm.
        { measure: `${t}: JS heap growth, quiet window / storm window`, value: `${s.heapQuietGrowthMiB} / ${Math.round((s.heapAfterMiB - s.heapBeforeMiB) * 10) / 10} MiB`, target: '' },
        { measure: `${t}: traffic entries / agent records after the storm`, value: `${s.trafficEntries} / ${s.agentRecords}`, target: '4 / 4' },
        { measure: `${t}: auth failures / refused unheard / peers tracked`, value: `${s.auth.failed} / ${s.auth.limited} / ${s.auth.peersTracked}`, target: '' },
        { measure: `${t}: forged messages sent / accepted`, value: `${s.forgeriesSent} / ${s.forgeriesAccepted}`, target: 'accepted 0' },
      );
      if (s.forgedUpdatesSent > 0) {
        table.push({ measure: `${t}: forged updates sent / agents off the log / dropped by agents`, value: `${s.forgedUpdatesSent} / ${s.forgedUpdatesAccepted} / ${s.updatesRejected}`, target: 'off the log 0' });
      }
    }
    // Rounds/s ratios measure the host as much as the coordinator when other work shares its cores.
    table.push({ measure: 'host load average (1 min) at start / end', value: `${loadAtStart.toFixed(1)} / ${loadavg()[0]!.toFixed(1)} on ${hostInfo().cores as number} cores`, target: '' });
    return { suite: 'attack', date: new Date().toISOString(), host: hostInfo(), windowMs, concurrency, ratePerSecond, kills, storms, table };
  } finally {
    logger.level = level;
  }
}
