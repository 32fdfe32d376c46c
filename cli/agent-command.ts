/**
 * `mezo agent`: an edge agent of a federated job. Trains on its local data — by default agent k of N of the
 * default task, or a data file — with the model on a worker thread, and reconnects on its own. When the
 * coordinator says the job has ended it exits 0 with the final weights (or, with --keep-waiting, waits for the
 * next job); SIGINT/SIGTERM end the session after the work in hand.
 */
import { privacyFloorSchema } from '../shared/privacy/record-dp.js';
import { availableParallelism, totalmem } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { byteSize } from './option-parsing.js';
import { configFlag, defineCommandOptions } from './command-options.js';
import { natsConfigSchema, natsOptionSpecs, natsTransportOptions } from './nats-options.js';
import type { AgentExit } from '../edge-agent/agent.js';
import type { AgentHandle, StartAgentOptions } from '../edge-agent/start-agent.js';
import type { DeviceBudget } from '../edge-agent/device-budget.js';
import type { Manifest, PreparedModel } from '../shared/model/index.js';

export const agentConfigSchema = z
  .strictObject({
    coordinator: z.string().min(1).default('127.0.0.1:7070'),
    agentId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -'),
    token: z.string().default(''),
    model: z.string().min(1).optional(),
    /** Local data file (.jsonl, .csv, .mzds); default: the default task's share of agent `agentIndex`. */
    data: z.string().min(1).optional(),
    agentIndex: z.number().int().min(0).default(0),
    numAgents: z.number().int().min(1).max(4500).default(10),
    /** Seed of the default task's partition (every agent of a job must use the same). */
    taskSeed: z.number().int().nonnegative().default(0),
    /** Keeps the agent's log replica, so a restart replays locally. */
    stateDir: z.string().min(1).optional(),
    /**
     * The coordinator's log key, as `mezo coordinator` prints it ("ed25519:" + 64 hex digits): a coordinator
     * presenting another key is refused. Unset: the key of the first Join is pinned.
     */
    logPublicKey: z.string().regex(/^ed25519:[0-9a-f]{64}$/, 'must be "ed25519:" followed by 64 lowercase hex digits').optional(),
    /**
     * The weakest record-level DP the agent accepts (docs/privacy.md): tasks with a larger clip, a smaller noise
     * multiplier, without private mode when required, or without record-level DP, are declined.
     */
    privacyFloor: privacyFloorSchema.optional(),
    worker: z.boolean().default(true),
    threads: z.number().int().min(1).max(256).default(1),
    /**
     * Memory the agent may use: it joins only when `mezo plan`'s MeZO peak for its model at planBatch fits, and
     * declines tasks whose batch does not. Bytes, or a size such as "512MiB".
     */
    memoryBudget: byteSize.optional(),
    /** The batch size the memory check plans for before joining (the coordinator's default batch). */
    planBatch: z.number().int().min(1).max(1 << 20).default(64),
    /** Caps onnxruntime's intra-op threads and the noise addon's threads. */
    maxThreads: z.number().int().min(1).max(256).optional(),
    /** Declines tasks (and reports itself busy) while the one-minute load average per core is above this. */
    pauseAboveLoad: z.number().positive().finite().optional(),
    maxMessageBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
    /** TLS: the CA bundle the coordinator's certificate must chain to; for mutual TLS also a client cert and key. */
    tlsCa: z.string().min(1).optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** The name the coordinator's certificate is checked against (default: the host dialled). */
    tlsServerName: z.string().min(1).optional(),
    /** grpc: dial `coordinator`; nats: the job's subjects on the NATS server(s) of `nats`. */
    transport: z.enum(['grpc', 'nats']).default('grpc'),
    /** NATS: the job to join (its subjects are per job; gRPC learns it from the coordinator). */
    jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -').default('mezo-job'),
    /** NATS: read log entries straight from the job's JetStream log stream when catching up. */
    natsReadLog: z.boolean().default(false),
    /** Stay when the job ends, for the next job on the same coordinator address or NATS job (default: exit 0). */
    keepWaiting: z.boolean().default(false),
    /** Exit with an error after this many ms without reaching a coordinator (default: keep trying). */
    giveUpAfterMs: z.number().int().min(1).optional(),
    /** Serve /healthz and /readyz on this host:port (edge-agent/health-server.ts); unset: no HTTP at all. */
    healthListen: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9465').optional(),
    nats: natsConfigSchema.prefault({}),
  })
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { path: ['tlsKey'], message: '--tls-cert and --tls-key go together' })
  .refine((c) => c.tlsCa !== undefined || (c.tlsCert === undefined && c.tlsServerName === undefined), {
    path: ['tlsCa'],
    message: 'TLS options need --tls-ca (the CA that signed the coordinator\'s certificate)',
  })
  .refine((c) => c.data !== undefined || c.agentIndex < c.numAgents, { path: ['agentIndex'], message: 'must be below numAgents' });
export type AgentConfig = z.output<typeof agentConfigSchema>;

/**
 * Every flag of `mezo agent`, in --help order: its config key and help (cli/command-options.ts derives the flag's
 * spelling, its MEZO_AGENT_* variable and its parser from these and the schema).
 */
export const agentOptions = defineCommandOptions(agentConfigSchema, 'MEZO_AGENT', {
  ...natsOptionSpecs,
  jobId: { key: 'jobId', arg: '<id>', help: 'NATS: the job to join (default mezo-job)' },
  natsReadLog: { key: 'natsReadLog', help: "NATS: catch up by reading the job's JetStream log stream directly" },
  config: configFlag('MEZO_AGENT'),
  coordinator: { key: 'coordinator', arg: '<host:port>', help: 'coordinator address (default 127.0.0.1:7070)' },
  // The two variables older than the derived names (MEZO_AGENT_AGENT_ID would stutter).
  agentId: { key: 'agentId', arg: '<id>', env: 'MEZO_AGENT_ID', help: "this agent's id" },
  token: { key: 'token', arg: '<token>', help: 'join token' },
  model: { key: 'model', arg: '<dir>', help: 'prepared model directory (default: the embedded default model)' },
  data: { key: 'data', arg: '<file>', help: 'local data: .jsonl, .csv or .mzds (default: the default task)' },
  agentIndex: { key: 'agentIndex', arg: '<k>', env: 'MEZO_AGENT_INDEX', help: "default task: this agent's share k of N" },
  numAgents: { key: 'numAgents', help: 'default task: number of shares N' },
  taskSeed: { key: 'taskSeed', help: 'default task: partition seed' },
  stateDir: { key: 'stateDir', arg: '<dir>', help: 'keep a log replica here for fast restarts' },
  logPublicKey: {
    key: 'logPublicKey',
    arg: '<key>',
    help: "pin the coordinator's log key (ed25519:…, printed by mezo coordinator); another key is refused",
  },
  dpMaxClip: { key: 'privacyFloor.maxClip', arg: '<x>', help: 'privacy floor: decline tasks whose record-level DP clip is above this (docs/privacy.md)' },
  dpMinNoiseMultiplier: {
    key: 'privacyFloor.minNoiseMultiplier',
    arg: '<x>',
    help: 'privacy floor: decline tasks whose record-level DP noise multiplier is below this (or that have none)',
  },
  dpRequirePrivate: { key: 'privacyFloor.requirePrivate', help: 'privacy floor: decline tasks not in private mode' },
  threads: { key: 'threads', help: 'onnxruntime intra-op threads' },
  maxThreads: { key: 'maxThreads', help: 'cap on the threads of onnxruntime (intra-op) and of the noise addon' },
  memoryBudget: {
    key: 'memoryBudget',
    arg: '<size>',
    help: "memory the agent may use, e.g. 512MiB: it joins only if mezo plan's MeZO peak fits (else exits 3) and declines tasks whose batch does not",
  },
  planBatch: { key: 'planBatch', help: 'the batch size the memory budget is checked at before joining (default 64)' },
  pauseAboveLoad: { key: 'pauseAboveLoad', arg: '<load>', help: 'decline tasks and report busy while the 1-minute load average per core is above this' },
  worker: { key: 'worker', negate: true, help: 'run the model on the main thread' },
  tlsCa: { key: 'tlsCa', arg: '<pem>', help: "connect over TLS, trusting this CA bundle for the coordinator's certificate" },
  tlsCert: { key: 'tlsCert', arg: '<pem>', help: "mutual TLS: this agent's certificate (with --tls-key)" },
  tlsKey: { key: 'tlsKey', arg: '<pem>', help: 'private key of --tls-cert' },
  tlsServerName: { key: 'tlsServerName', arg: '<name>', help: "name to check the coordinator's certificate against (default: the host dialled)" },
  keepWaiting: { key: 'keepWaiting', help: 'when the job ends, stay for the next job instead of exiting' },
  healthListen: { key: 'healthListen', arg: '<host:port>', help: 'serve /healthz and /readyz here, e.g. 127.0.0.1:9465 (default: no HTTP)' },
  giveUpAfterMs: { key: 'giveUpAfterMs', arg: '<ms>', help: 'exit with an error after this long without reaching a coordinator (default: never)' },
});

/** The one line `mezo agent` prints when it exits normally. */
export function describeExit(agentId: string, exit: AgentExit): string {
  if (exit.reason === 'stopped') return `agent ${agentId}: stopped`;
  const { jobId, reason, version, headHash } = exit.jobEnd;
  const how = reason === 'completed' ? 'completed' : 'was stopped by its coordinator';
  return `agent ${agentId}: job ${jobId} ${how} at version ${version} (head ${headHash.slice(0, 12)}); exiting`;
}

export function resolveAgentConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return agentOptions.resolve(flags, env);
}

/** The agent's data: its --data file read the way the model reads its input (token ids for an int64 input). */
async function loadData(config: AgentConfig, manifest: Manifest) {
  const data = await import('../shared/data/index.js');
  const { defaultTask } = await import('../shared/model/index.js');
  if (!config.data) return defaultTask({ numAgents: config.numAgents, seed: config.taskSeed }).agents[config.agentIndex]!;
  const dtype = data.featureDtypeForInput(manifest.dataInputs[0]?.elemType);
  return data.readDatasetFile(config.data, manifest.classes === null ? { dtype } : { numClasses: manifest.classes, dtype });
}

/**
 * The device's limits, when any is set. With a memory budget the model must fit it at planBatch before the agent
 * joins: DeviceBudgetError (exit code 3) names the predicted peak and the budget otherwise.
 */
export async function deviceBudget(config: AgentConfig, prepared: Pick<PreparedModel, 'model' | 'manifest'>): Promise<DeviceBudget | undefined> {
  if (config.memoryBudget === undefined && config.pauseAboveLoad === undefined) return undefined;
  const { DeviceBudget } = await import('../edge-agent/device-budget.js');
  const device = new DeviceBudget(prepared, {
    ...(config.memoryBudget !== undefined ? { memoryBudgetBytes: config.memoryBudget } : {}),
    ...(config.pauseAboveLoad !== undefined ? { pauseAboveLoad: config.pauseAboveLoad } : {}),
  });
  device.checkFits(config.planBatch);
  return device;
}

/** onnxruntime's intra-op threads (--threads, at most --max-threads) and the noise addon's (--max-threads). */
export function threadOptions(config: AgentConfig): { intraOpThreads: number; noiseThreads?: number } {
  if (config.maxThreads === undefined) return { intraOpThreads: config.threads };
  return { intraOpThreads: Math.min(config.threads, config.maxThreads), noiseThreads: config.maxThreads };
}

/** Runs the agent until the job ends (unless config.keepWaiting), a signal stops it, or it cannot go on. */
export async function runAgent(config: AgentConfig, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<AgentExit> {
  const { loadPrepared, loadDefaultModel } = await import('../shared/model/index.js');
  const { GrpcTransport, NatsTransport, clientTlsCredentials } = await import('../shared/transport/index.js');
  const { noise } = await import('../shared/noise/index.js');
  const { startAgent } = await import('../edge-agent/start-agent.js');
  const { createAgentBackend } = await import('../edge-agent/agent-backend.js');
  if (config.model && !config.data) throw new InvalidArgumentError('--data is required with --model (the default task fits the default model only)');
  const prepared = config.model ? await loadPrepared(config.model) : await loadDefaultModel();
  const device = await deviceBudget(config, prepared);
  const data = await loadData(config, prepared.manifest);
  const threads = threadOptions(config);
  const init: StartAgentOptions = {
    agentId: config.agentId,
    token: config.token,
    transport:
      config.transport === 'nats'
        ? new NatsTransport({
            jobId: config.jobId,
            subjectPrefix: config.nats.subjectPrefix,
            maxMessageBytes: config.maxMessageBytes,
            readLogFromStream: config.natsReadLog,
            ...natsTransportOptions(config.nats),
          })
        : new GrpcTransport({
            address: config.coordinator,
            maxMessageBytes: config.maxMessageBytes,
            ...(config.tlsCa ? { channelCredentials: clientTlsCredentials({ ca: config.tlsCa, cert: config.tlsCert, key: config.tlsKey }) } : {}),
            ...(config.tlsServerName ? { serverNameOverride: config.tlsServerName } : {}),
          }),
    prepared,
    createBackend: (distribution, rank) => createAgentBackend(prepared, distribution, { worker: config.worker, ...threads, ...(rank !== undefined ? { rank } : {}) }),
    data,
    dataSeed: config.agentIndex,
    capabilities: {
      memoryBytes: totalmem(),
      cores: availableParallelism(),
      noiseImpl: noise.kind,
      ...(config.memoryBudget !== undefined ? { memoryBudgetBytes: config.memoryBudget } : {}),
      ...(config.maxThreads !== undefined ? { threads: config.maxThreads } : {}),
    },
    ...(device ? { device } : {}),
    ...(config.stateDir ? { stateDir: config.stateDir } : {}),
    ...(config.logPublicKey ? { logPublicKey: config.logPublicKey } : {}),
    ...(config.privacyFloor ? { privacyFloor: config.privacyFloor } : {}),
    onJobEnd: config.keepWaiting ? 'wait' : 'leave',
    ...(config.giveUpAfterMs !== undefined ? { giveUpAfterMs: config.giveUpAfterMs } : {}),
  };
  // Bound before the agent starts, so /readyz answers 503 while it connects rather than refusing connections.
  let agent: AgentHandle | undefined;
  const { parseListen, serveAgentHealth } = await import('../edge-agent/health-server.js');
  const healthServer =
    config.healthListen === undefined
      ? undefined
      : await serveAgentHealth({ ...parseListen(config.healthListen), health: () => agent?.health ?? { alive: false, ready: false, reason: 'not started' } });
  const onSignal = (): void => agent?.stop();
  signals.forEach((s) => process.on(s, onSignal));
  try {
    agent = startAgent(init);
    await agent.waitForEnd();
    return agent.exit ?? { reason: 'stopped' };
  } finally {
    signals.forEach((s) => process.off(s, onSignal));
    await agent?.close();
    await healthServer?.close();
  }
}

export function registerAgentCommand(program: Command): void {
  agentOptions
    .register(program.command('agent'))
    .description('join a federated MeZO job as an edge agent')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveAgentConfig(flags);
      const { DeviceBudgetError } = await import('../edge-agent/device-budget.js');
      let exit: AgentExit;
      try {
        exit = await runAgent(config);
      } catch (err) {
        if (!(err instanceof DeviceBudgetError)) throw err;
        // Not a failure of the agent: the device is too small for the job. One line, and its own exit code.
        process.stderr.write(`agent ${config.agentId}: ${err.message}\n`);
        process.exitCode = DeviceBudgetError.EXIT_CODE;
        return;
      }
      process.stdout.write(`${describeExit(config.agentId, exit)}\n`);
    });
}
