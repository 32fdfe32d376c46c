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
import { resolveConfig, type EnvBinding } from '../shared/config/index.js';
import { byteSize, layeredFlags, number } from './option-parsing.js';
import { NATS_FLAGS, addNatsOptions, natsConfigSchema, natsEnv, natsTransportOptions } from './nats-options.js';
import type { AgentExit } from '../edge-agent/agent.js';
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

const ENV: Record<string, EnvBinding> = {
  MEZO_AGENT_COORDINATOR: { path: 'coordinator', type: 'string' },
  MEZO_AGENT_ID: { path: 'agentId', type: 'string' },
  MEZO_AGENT_TOKEN: { path: 'token', type: 'string' },
  MEZO_AGENT_DATA: { path: 'data', type: 'string' },
  MEZO_AGENT_INDEX: { path: 'agentIndex', type: 'number' },
  MEZO_AGENT_NUM_AGENTS: { path: 'numAgents', type: 'number' },
  MEZO_AGENT_STATE_DIR: { path: 'stateDir', type: 'string' },
  MEZO_AGENT_LOG_PUBLIC_KEY: { path: 'logPublicKey', type: 'string' },
  MEZO_AGENT_DP_MAX_CLIP: { path: 'privacyFloor.maxClip', type: 'number' },
  MEZO_AGENT_DP_MIN_NOISE_MULTIPLIER: { path: 'privacyFloor.minNoiseMultiplier', type: 'number' },
  MEZO_AGENT_DP_REQUIRE_PRIVATE: { path: 'privacyFloor.requirePrivate', type: 'boolean' },
  MEZO_AGENT_TLS_CA: { path: 'tlsCa', type: 'string' },
  MEZO_AGENT_TLS_CERT: { path: 'tlsCert', type: 'string' },
  MEZO_AGENT_TLS_KEY: { path: 'tlsKey', type: 'string' },
  MEZO_AGENT_JOB_ID: { path: 'jobId', type: 'string' },
  MEZO_AGENT_KEEP_WAITING: { path: 'keepWaiting', type: 'boolean' },
  MEZO_AGENT_GIVE_UP_AFTER_MS: { path: 'giveUpAfterMs', type: 'number' },
  MEZO_AGENT_HEALTH_LISTEN: { path: 'healthListen', type: 'string' },
  MEZO_AGENT_MEMORY_BUDGET: { path: 'memoryBudget', type: 'string' },
  MEZO_AGENT_PLAN_BATCH: { path: 'planBatch', type: 'number' },
  MEZO_AGENT_MAX_THREADS: { path: 'maxThreads', type: 'number' },
  MEZO_AGENT_PAUSE_ABOVE_LOAD: { path: 'pauseAboveLoad', type: 'number' },
  ...natsEnv('MEZO_AGENT'),
};

const FLAGS: Record<string, string> = {
  coordinator: 'coordinator',
  agentId: 'agentId',
  token: 'token',
  model: 'model',
  data: 'data',
  agentIndex: 'agentIndex',
  numAgents: 'numAgents',
  taskSeed: 'taskSeed',
  stateDir: 'stateDir',
  logPublicKey: 'logPublicKey',
  dpMaxClip: 'privacyFloor.maxClip',
  dpMinNoiseMultiplier: 'privacyFloor.minNoiseMultiplier',
  dpRequirePrivate: 'privacyFloor.requirePrivate',
  worker: 'worker',
  threads: 'threads',
  tlsCa: 'tlsCa',
  tlsCert: 'tlsCert',
  tlsKey: 'tlsKey',
  tlsServerName: 'tlsServerName',
  jobId: 'jobId',
  natsReadLog: 'natsReadLog',
  keepWaiting: 'keepWaiting',
  giveUpAfterMs: 'giveUpAfterMs',
  healthListen: 'healthListen',
  memoryBudget: 'memoryBudget',
  planBatch: 'planBatch',
  maxThreads: 'maxThreads',
  pauseAboveLoad: 'pauseAboveLoad',
  ...NATS_FLAGS,
};


/** The one line `mezo agent` prints when it exits normally. */
export function describeExit(agentId: string, exit: AgentExit): string {
  if (exit.reason === 'stopped') return `agent ${agentId}: stopped`;
  const { jobId, reason, version, headHash } = exit.jobEnd;
  const how = reason === 'completed' ? 'completed' : 'was stopped by its coordinator';
  return `agent ${agentId}: job ${jobId} ${how} at version ${version} (head ${headHash.slice(0, 12)}); exiting`;
}

export function resolveAgentConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return resolveConfig(agentConfigSchema, { env, envBindings: ENV, ...layeredFlags(flags, FLAGS) });
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
  const { Agent } = await import('../edge-agent/agent.js');
  const { createAgentBackend } = await import('../edge-agent/agent-backend.js');
  if (config.model && !config.data) throw new InvalidArgumentError('--data is required with --model (the default task fits the default model only)');
  const prepared = config.model ? await loadPrepared(config.model) : await loadDefaultModel();
  const device = await deviceBudget(config, prepared);
  const data = await loadData(config, prepared.manifest);
  const threads = threadOptions(config);
  const agent = new Agent({
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
  });
  // Bound before the agent starts, so /readyz answers 503 while it connects rather than refusing connections.
  const { parseListen, serveAgentHealth } = await import('../edge-agent/health-server.js');
  const healthServer = config.healthListen === undefined ? undefined : await serveAgentHealth({ ...parseListen(config.healthListen), health: () => agent.health });
  const onSignal = (): void => agent.stop();
  signals.forEach((s) => process.on(s, onSignal));
  try {
    await agent.run();
    return agent.exit ?? { reason: 'stopped' };
  } finally {
    signals.forEach((s) => process.off(s, onSignal));
    await agent.close();
    await healthServer?.close();
  }
}

export function registerAgentCommand(program: Command): void {
  addNatsOptions(program.command('agent'))
    .description('join a federated MeZO job as an edge agent')
    .option('--job-id <id>', 'NATS: the job to join (default mezo-job)')
    .option('--nats-read-log', 'NATS: catch up by reading the job\'s JetStream log stream directly')
    .option('--config <file>', 'JSON config file (defaults < file < MEZO_AGENT_* env < flags)')
    .option('--coordinator <host:port>', 'coordinator address (default 127.0.0.1:7070)')
    .option('--agent-id <id>', 'this agent\'s id')
    .option('--token <token>', 'join token')
    .option('--model <dir>', 'prepared model directory (default: the embedded default model)')
    .option('--data <file>', 'local data: .jsonl, .csv or .mzds (default: the default task)')
    .option('--agent-index <k>', 'default task: this agent\'s share k of N', number)
    .option('--num-agents <n>', 'default task: number of shares N', number)
    .option('--task-seed <n>', 'default task: partition seed', number)
    .option('--state-dir <dir>', 'keep a log replica here for fast restarts')
    .option('--log-public-key <key>', 'pin the coordinator\'s log key (ed25519:…, printed by mezo coordinator); another key is refused')
    .option('--dp-max-clip <x>', 'privacy floor: decline tasks whose record-level DP clip is above this (docs/privacy.md)', number)
    .option('--dp-min-noise-multiplier <x>', 'privacy floor: decline tasks whose record-level DP noise multiplier is below this (or that have none)', number)
    .option('--dp-require-private', 'privacy floor: decline tasks not in private mode')
    .option('--threads <n>', 'onnxruntime intra-op threads', number)
    .option('--max-threads <n>', 'cap on the threads of onnxruntime (intra-op) and of the noise addon', number)
    .option('--memory-budget <size>', 'memory the agent may use, e.g. 512MiB: it joins only if mezo plan\'s MeZO peak fits (else exits 3) and declines tasks whose batch does not')
    .option('--plan-batch <n>', 'the batch size the memory budget is checked at before joining (default 64)', number)
    .option('--pause-above-load <load>', 'decline tasks and report busy while the 1-minute load average per core is above this', number)
    .option('--no-worker', 'run the model on the main thread')
    .option('--tls-ca <pem>', 'connect over TLS, trusting this CA bundle for the coordinator\'s certificate')
    .option('--tls-cert <pem>', 'mutual TLS: this agent\'s certificate (with --tls-key)')
    .option('--tls-key <pem>', 'private key of --tls-cert')
    .option('--tls-server-name <name>', 'name to check the coordinator\'s certificate against (default: the host dialled)')
    .option('--keep-waiting', 'when the job ends, stay for the next job instead of exiting')
    .option('--health-listen <host:port>', 'serve /healthz and /readyz here, e.g. 127.0.0.1:9465 (default: no HTTP)')
    .option('--give-up-after-ms <ms>', 'exit with an error after this long without reaching a coordinator (default: never)', number)
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveAgentConfig({ ...flags, worker: flags.worker === false ? false : undefined });
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
