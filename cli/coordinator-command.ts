/**
 * `mezo coordinator`: serves a federated MeZO job over gRPC. Rounds are appended to a durable update log;
 * restarting with the same --log resumes at the next round. SIGINT/SIGTERM stop scheduling, abandon the open
 * round, and close streams and the log cleanly.
 */
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import type { Coordinator, RunReport } from '../coordinator/coordinator.js';
import type { HeldOutScore } from '../coordinator/held-out-evaluation.js';
import type { RunMonitor } from '../coordinator/run-monitor.js';
import type { WorkerBackend } from '../edge-agent/worker-backend.js';
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { Manifest } from '../shared/model/index.js';
import type { ProgressReporter } from '../shared/progress.js';
import type { CoordinatorOutcome } from './coordinator-summary.js';
import { resolveConfig, type EnvBinding } from '../shared/config/index.js';
import { roundOptionsSchema } from '../coordinator/options.js';
import { centralDpOptionsSchema } from '../coordinator/dp-strategy.js';
import { secureAggregationOptionsSchema } from '../coordinator/secure-aggregation.js';
import { SECURE_AGGREGATION_FLAGS, addSecureAggregationOptions } from './secure-aggregation-options.js';
import { DP_FLAGS, RECORD_DP_FLAGS, addDpOptions, addRecordDpOptions, dpEnv, recordDpEnv, type PrivacySpent } from './dp-options.js';
import { recordDpOptionsSchema, type RecordPrivacySpent } from '../shared/privacy/record-dp.js';
import { layeredFlags, number, size } from './option-parsing.js';
import { NATS_FLAGS, addNatsOptions, natsConfigSchema, natsEnv, openCoordinatorNats } from './nats-options.js';

export const coordinatorConfigSchema = z.strictObject({
  /** host:port to serve on. */
  listen: z.string().min(1).default('0.0.0.0:7070'),
  /** The durable update log (created when absent). */
  log: z.string().min(1).default('mezo-coordinator/update.log'),
  /**
   * The Ed25519 key (PKCS#8 PEM) that signs every log entry; created (mode 0600) when absent. Default:
   * coordinator.key next to the log, whatever the log store.
   */
  signingKey: z.string().min(1).optional(),
  /** Prepared model directory; default: the embedded default model. */
  model: z.string().min(1).optional(),
  maxMessageBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  /** TLS: the coordinator's PEM certificate chain and key; with tlsClientCa, agents must present a certificate it signed. */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  tlsClientCa: z.string().min(1).optional(),
  /** How agents reach the coordinator: gRPC on `listen`, or the job's subjects on a NATS server (`nats`). */
  transport: z.enum(['grpc', 'nats']).default('grpc'),
  /** Where the update log lives: the `log` file, or a JetStream stream on the NATS server (needs transport nats). */
  logStore: z.enum(['file', 'jetstream']).default('file'),
  nats: natsConfigSchema.prefault({}),
  /** Snapshot the materialised weights every n committed versions (0: never); restarts replay only the tail. */
  snapshotEvery: z.number().int().min(0).default(0),
  /** Where snapshots go (default: snapshots/ next to the log). */
  snapshotDir: z.string().min(1).optional(),
  /** Serve FetchLog only for the newest n versions (never past the newest snapshot); older agents load a snapshot. */
  keepVersions: z.number().int().min(0).optional(),
  /** host:port for the operator HTTP server: the dashboard, Prometheus /metrics, /healthz and /readyz (off when unset). */
  metricsListen: z
    .string()
    .regex(/^[^\s:]*:\d{1,5}$/, 'must be host:port')
    .optional(),
  /** Token the dashboard and metrics require (read-only operator access); none when unset. */
  metricsToken: z.string().min(1).optional(),
  /** Where to write the run record (run.json, for `mezo report`) when the run ends. */
  runRecord: z.string().min(1).optional(),
  /** Held-out data the coordinator scores its weights on (.jsonl, .csv, .mzds); default with the embedded model: its shifted test digits. */
  evalData: z.string().min(1).optional(),
  /** Evaluate on the held-out data every n rounds, before the first and after the last (0: never; default: about ten times a run). */
  evalEvery: z.number().int().min(0).optional(),
  /**
   * Central agent-level DP (coordinator/dp-strategy.ts, docs/privacy.md): each agent's values clipped to L2 norm
   * `clip`, Gaussian noise of multiplier `noiseMultiplier` (or the one `epsilon` at `delta` needs over the job's
   * rounds at agentsPerRound / fleetSize) on the released coefficients; with `epsilon`, the job ends at the budget.
   */
  dp: centralDpOptionsSchema(true).optional(),
  /**
   * Secure aggregation (coordinator/secure-aggregation.ts, docs/privacy.md): the coordinator learns only the sum of
   * each round's answers. Needs shared seeds and the mean; combines with `dp` (noise on the unmasked sum).
   */
  secureAggregation: secureAggregationOptionsSchema.optional(),
  /**
   * Record-level DP on the agents (shared/privacy/record-dp.ts, docs/privacy.md): every task asks its agent to clip
   * each example and add noise of multiplier `noiseMultiplier` (or the one `epsilon` at `delta` needs over the
   * job's rounds, agent rate agentsPerRound / fleetSize, record rate batchSize / shardSize); `private`: agents
   * send no losses. `shardSize`, the fewest examples an agent holds, is what ε is accounted for.
   */
  recordDp: recordDpOptionsSchema(true).optional(),
  job: z.preprocess((value) => {
    // A linear or cosine schedule decays over the job's rounds unless totalSteps says otherwise.
    if (value === null || typeof value !== 'object') return value;
    const job = value as { rounds?: unknown; strategy?: { schedule?: { kind?: unknown; totalSteps?: unknown } } };
    const schedule = job.strategy?.schedule;
    if (schedule && schedule.kind !== undefined && schedule.kind !== 'constant' && schedule.totalSteps === undefined) {
      return { ...job, strategy: { ...job.strategy, schedule: { ...schedule, totalSteps: job.rounds ?? 100 } } };
    }
    return value;
  }, roundOptionsSchema.prefault({})),
})
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { path: ['tlsKey'], message: '--tls-cert and --tls-key go together' })
  .refine((c) => c.tlsClientCa === undefined || c.tlsCert !== undefined, { path: ['tlsClientCa'], message: 'mutual TLS needs --tls-cert and --tls-key too' })
  .refine((c) => c.logStore === 'file' || c.transport === 'nats', { path: ['logStore'], message: '--log-store jetstream needs --transport nats' })
  .refine((c) => !c.evalEvery || c.model === undefined || c.evalData !== undefined, {
    path: ['evalData'],
    message: '--eval-every with --model needs --eval-data (the embedded held-out digits fit the embedded model only)',
  });
export type CoordinatorConfig = z.output<typeof coordinatorConfigSchema>;

const ENV: Record<string, EnvBinding> = {
  MEZO_COORDINATOR_LISTEN: { path: 'listen', type: 'string' },
  MEZO_COORDINATOR_LOG: { path: 'log', type: 'string' },
  MEZO_COORDINATOR_SIGNING_KEY: { path: 'signingKey', type: 'string' },
  MEZO_COORDINATOR_MODEL: { path: 'model', type: 'string' },
  MEZO_COORDINATOR_JOB_ID: { path: 'job.jobId', type: 'string' },
  MEZO_COORDINATOR_ROUNDS: { path: 'job.rounds', type: 'number' },
  MEZO_COORDINATOR_AGENTS_PER_ROUND: { path: 'job.strategy.agentsPerRound', type: 'number' },
  MEZO_COORDINATOR_QUORUM: { path: 'job.quorum', type: 'number' },
  MEZO_COORDINATOR_DEADLINE_MS: { path: 'job.deadlineMs', type: 'number' },
  MEZO_COORDINATOR_SEEDS_PER_AGENT: { path: 'job.strategy.seedsPerAgent', type: 'number' },
  MEZO_COORDINATOR_LR: { path: 'job.strategy.schedule.lr', type: 'number' },
  MEZO_COORDINATOR_EPSILON: { path: 'job.epsilon', type: 'number' },
  MEZO_COORDINATOR_TOKEN: { path: 'job.token', type: 'string' },
  MEZO_COORDINATOR_COMPACT_EVERY: { path: 'job.compactEvery', type: 'number' },
  MEZO_COORDINATOR_METRICS_LISTEN: { path: 'metricsListen', type: 'string' },
  MEZO_COORDINATOR_METRICS_TOKEN: { path: 'metricsToken', type: 'string' },
  MEZO_COORDINATOR_RUN_RECORD: { path: 'runRecord', type: 'string' },
  MEZO_COORDINATOR_EVAL_DATA: { path: 'evalData', type: 'string' },
  MEZO_COORDINATOR_EVAL_EVERY: { path: 'evalEvery', type: 'number' },
  MEZO_COORDINATOR_TLS_CERT: { path: 'tlsCert', type: 'string' },
  MEZO_COORDINATOR_TLS_KEY: { path: 'tlsKey', type: 'string' },
  MEZO_COORDINATOR_TLS_CLIENT_CA: { path: 'tlsClientCa', type: 'string' },
  MEZO_COORDINATOR_LOG_STORE: { path: 'logStore', type: 'string' },
  ...natsEnv('MEZO_COORDINATOR'),
  ...dpEnv('MEZO_COORDINATOR'),
  ...recordDpEnv('MEZO_COORDINATOR'),
};

const FLAGS: Record<string, string> = {
  listen: 'listen',
  log: 'log',
  signingKey: 'signingKey',
  model: 'model',
  maxMessageBytes: 'maxMessageBytes',
  jobId: 'job.jobId',
  rounds: 'job.rounds',
  agentsPerRound: 'job.strategy.agentsPerRound',
  quorum: 'job.quorum',
  deadlineMs: 'job.deadlineMs',
  maxAttempts: 'job.maxAttempts',
  seedsPerAgent: 'job.strategy.seedsPerAgent',
  seedMode: 'job.strategy.seedMode',
  poolSize: 'job.strategy.poolSize',
  sampling: 'job.strategy.sampling',
  minMemory: 'job.strategy.minMemoryBytes',
  strategy: 'job.strategy.aggregation',
  trimFraction: 'job.strategy.trimFraction',
  clip: 'job.strategy.clip',
  momentum: 'job.strategy.momentum.beta',
  momentumWindow: 'job.strategy.momentum.window',
  lossGuard: 'job.strategy.lossGuard.threshold',
  plateauPatience: 'job.strategy.plateau.patience',
  plateauFactor: 'job.strategy.plateau.factor',
  lr: 'job.strategy.schedule.lr',
  schedule: 'job.strategy.schedule.kind',
  minLr: 'job.strategy.schedule.minLr',
  warmupSteps: 'job.strategy.schedule.warmupSteps',
  seed: 'job.strategy.seed',
  epsilon: 'job.epsilon',
  batchSize: 'job.batchSize',
  distribution: 'job.distribution',
  rank: 'job.rank',
  vPeriod: 'job.strategy.vPeriod',
  heartbeatMs: 'job.heartbeatMs',
  token: 'job.token',
  tlsCert: 'tlsCert',
  tlsKey: 'tlsKey',
  tlsClientCa: 'tlsClientCa',
  snapshotEvery: 'snapshotEvery',
  snapshotDir: 'snapshotDir',
  keepVersions: 'keepVersions',
  compactEvery: 'job.compactEvery',
  metricsListen: 'metricsListen',
  metricsToken: 'metricsToken',
  runRecord: 'runRecord',
  evalData: 'evalData',
  evalEvery: 'evalEvery',
  rateLimit: 'job.rateLimit.perSecond',
  rateBurst: 'job.rateLimit.burst',
  logStore: 'logStore',
  natsReplicas: 'nats.replicas',
  ...NATS_FLAGS,
  ...DP_FLAGS,
  dpFleetSize: 'dp.fleetSize',
  ...SECURE_AGGREGATION_FLAGS,
  ...RECORD_DP_FLAGS,
  dpRecordShardSize: 'recordDp.shardSize',
  dpRecordFleetSize: 'recordDp.fleetSize',
};



/** Defaults < --config file < MEZO_COORDINATOR_* < flags. */
export function resolveCoordinatorConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  return resolveConfig(coordinatorConfigSchema, { env, envBindings: ENV, ...layeredFlags(flags, FLAGS) });
}

/** What a terminal shows besides the logs: progress while the job runs, a summary when it ends. */
export interface CoordinatorOutput {
  /** Starts a progress display for the job's rounds (e.g. shared/progress.ts's createProgress); none by default. */
  progress?: (total: number) => ProgressReporter;
  /** Called once the run has ended (not when it failed), after the run record is written. */
  onFinished?: (outcome: CoordinatorOutcome) => void;
}

/** The JSON report: the coordinator's, with the first and last held-out evaluations when there were any. */
export type CoordinatorReport = RunReport & { heldOut?: { before: HeldOutScore; after: HeldOutScore }; privacy?: PrivacySpent; recordPrivacy?: RecordPrivacySpent };

/** Runs the job until its rounds are logged or a signal stops it. */
export async function runCoordinator(
  config: CoordinatorConfig,
  signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
  output: CoordinatorOutput = {},
): Promise<CoordinatorReport> {
  const { loadPrepared, loadDefaultModel, paddingRanges } = await import('../shared/model/index.js');
  const { LogSigner, UpdateLog } = await import('../shared/log/index.js');
  const { noise } = await import('../shared/noise/index.js');
  const { noiseModeFor } = await import('../shared/optim/perturbation.js');
  const { GrpcTransport, serverTlsCredentials } = await import('../shared/transport/index.js');
  const { Coordinator } = await import('../coordinator/coordinator.js');
  const { MezoStrategy } = await import('../coordinator/strategy.js');
  const { CentralDpStrategy, stopAtPrivacyBudget } = await import('../coordinator/dp-strategy.js');
  const { CoordinatorMetrics } = await import('../coordinator/metrics.js');
  const { RunMonitor, coordinatorRunConfig } = await import('../coordinator/run-monitor.js');
  const { serveDashboard } = await import('../coordinator/dashboard/server.js');
  const { HeldOutEvaluation } = await import('../coordinator/held-out-evaluation.js');
  const { WorkerBackend } = await import('../edge-agent/worker-backend.js');
  const { logger } = await import('../shared/logger.js');

  // Before anything opens: a DP configuration the strategy refuses (median, pool seeds, double clipping) throws here.
  const dp = config.dp ? new CentralDpStrategy(new MezoStrategy(config.job.strategy), { ...config.dp, rounds: config.job.rounds }) : undefined;
  // Likewise a strategy secure aggregation cannot serve (median, trimmed mean, distinct or pool seeds).
  if (config.secureAggregation?.enabled) {
    const { secureAggregationTarget } = await import('../coordinator/secure-aggregation.js');
    secureAggregationTarget(dp ?? new MezoStrategy(config.job.strategy));
  }
  const { resolveRecordDp } = await import('../shared/privacy/record-dp.js');
  const { trackRecordPrivacy } = await import('../coordinator/record-dp.js');
  if (config.recordDp && config.job.recordDp) throw new RangeError('coordinator config: give recordDp or job.recordDp, not both');
  const recordDp = config.recordDp
    ? resolveRecordDp(config.recordDp, {
        agentsPerRound: config.job.strategy.agentsPerRound,
        fleetSize: config.recordDp.fleetSize,
        batchSize: config.job.batchSize,
        shardSize: config.recordDp.shardSize!,
        rounds: config.job.rounds,
      })
    : undefined;
  const prepared = config.model ? await loadPrepared(config.model) : await loadDefaultModel();
  const heldOutSet = await loadHeldOut(config, prepared.manifest);
  const header = { jobId: config.job.jobId, baseSha256: prepared.manifest.slabSha256, distribution: config.job.distribution, rank: config.job.rank, decayRanges: [] };
  // The log is the coordinator's alone: it signs every entry, and agents check the signatures (docs/security.md).
  const signingKey = config.signingKey ?? join(dirname(config.log), 'coordinator.key');
  const signer = await LogSigner.loadOrCreate(signingKey);
  const nats =
    config.transport === 'nats'
      ? await openCoordinatorNats(config.nats, { jobId: config.job.jobId, header, logStore: config.logStore, maxMessageBytes: config.maxMessageBytes, signer })
      : undefined;
  const log = nats?.log ?? (await UpdateLog.open(config.log, header, { signer }).catch(async (err: unknown) => {
    await nats?.close();
    throw err;
  }));
  const coordinator = new Coordinator({
    ...(dp ? { strategy: dp } : {}),
    ...(config.secureAggregation ? { secureAggregation: config.secureAggregation } : {}),
    log,
    baseSlab: prepared.slab,
    padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length),
    lowRank: noiseModeFor(config.job, prepared.manifest.tensors).lowRank,
    engine: noise,
    transport: nats?.transport ?? new GrpcTransport({
      address: config.listen,
      maxMessageBytes: config.maxMessageBytes,
      ...(config.tlsCert && config.tlsKey
        ? { serverCredentials: serverTlsCredentials({ cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa }) }
        : {}),
    }),
    options: recordDp ? { ...config.job, recordDp: recordDp.dp } : config.job,
    ...(config.snapshotEvery > 0
      ? {
          snapshots: {
            dir: config.snapshotDir ?? join(dirname(config.log), 'snapshots'),
            every: config.snapshotEvery,
            ...(config.keepVersions !== undefined ? { keepVersions: config.keepVersions } : {}),
          },
        }
      : {}),
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping: abandoning the open round and closing streams');
    // An operator's stop ends the job for its agents too (they leave, or wait with --keep-waiting); a crash does not.
    coordinator.stop({ endJob: true });
  };
  signals.forEach((s) => process.on(s, onSignal));
  // The monitor feeds the dashboard, the metrics' per-round gauges, the run record and the summary.
  const metrics = config.metricsListen ? new CoordinatorMetrics(coordinator) : undefined;
  const options = coordinator.options;
  // Before the monitor: the accountant hears each round first, so the round's row shows ε after it.
  if (recordDp) trackRecordPrivacy(coordinator, recordDp.accountant);
  const monitor = new RunMonitor({
    coordinator,
    kind: 'coordinator',
    ...(metrics ? { metrics } : {}),
    ...(dp ? { privacy: () => dp.spent() } : {}),
    ...(recordDp ? { recordPrivacy: () => recordDp.accountant.spent() } : {}),
    config: {
      ...coordinatorRunConfig(options),
      // The dashboard says why there is no accuracy when evaluation is off.
      evalEvery: 'dataset' in heldOutSet ? heldOutSet.every : 0,
      evalData: 'dataset' in heldOutSet ? heldOutSet.name : null,
      ...('off' in heldOutSet ? { evalOff: heldOutSet.off } : {}),
      ...(dp ? { dp: { clip: dp.config.clip, noiseMultiplier: dp.noiseMultiplier, epsilon: dp.config.epsilon ?? null, delta: dp.config.delta } } : {}),
      ...(recordDp
        ? { recordDp: { ...recordDp.dp, epsilon: config.recordDp!.epsilon ?? null, delta: config.recordDp!.delta, shardSize: recordDp.accountant.shardSize } }
        : {}),
    },
  });
  let metricsServer: Awaited<ReturnType<typeof serveDashboard>> | undefined;
  let evaluator: WorkerBackend | undefined;
  let heldOut: InstanceType<typeof HeldOutEvaluation> | undefined;
  let progress: ProgressReporter | undefined;
  let ended: CoordinatorReport | undefined;
  try {
    if ('dataset' in heldOutSet) {
      // On a worker thread: a forward pass holds its thread, and this one serves the agents.
      evaluator = await WorkerBackend.start(prepared, { distribution: config.job.distribution, rank: config.job.rank, intraOpThreads: 1, noiseThreads: 1 });
      heldOut = new HeldOutEvaluation({
        coordinator,
        backend: evaluator,
        dataset: heldOutSet.dataset,
        every: heldOutSet.every,
        rounds: options.rounds,
        classifier: prepared.manifest.classes !== null,
        monitor,
      });
    }
    if (config.metricsListen && metrics) {
      metrics.setLogVersion(log.version);
      const at = config.metricsListen.lastIndexOf(':');
      metricsServer = await serveDashboard({
        metrics,
        ...(monitor ? { monitor } : {}),
        host: config.metricsListen.slice(0, at) || '0.0.0.0',
        port: Number(config.metricsListen.slice(at + 1)),
        ...(config.metricsToken ? { token: config.metricsToken } : {}),
        health: coordinator.health,
      });
      process.stderr.write(`dashboard on ${metricsServer.url}/, metrics on ${metricsServer.url}/metrics\n`);
    }
    const address = await coordinator.listen();
    if (log.recovery) {
      const r = log.recovery;
      process.stderr.write(`update log ${config.log}: torn tail truncated (${r.truncatedBytes} bytes; ${r.reason}); kept ${r.keptEntries} entries\n`);
    }
    if (nats?.logNote) process.stderr.write(`${nats.logNote}\n`);
    process.stderr.write(`update log signed with ${signer.publicKey} (key ${signingKey}); agents may pin it with --log-public-key\n`);
    process.stderr.write(`coordinator ${config.job.jobId} listening on ${address}, log at version ${log.version}\n`);
    const before = await heldOut?.evaluateHead();
    if (output.progress) progress = showProgress(output.progress(options.rounds), coordinator, monitor, log.version === 0 ? 0 : log.entries(log.version - 1)[0]!.round + 1);
    if (dp) stopAtPrivacyBudget(coordinator, dp);
    const report = await coordinator.run();
    // The weights after the last round, unless that round was just evaluated; the bar ends on this figure.
    const after = await heldOut?.finish().catch((err: Error) => {
      logger.error({ err: err.message }, 'the held-out evaluation failed');
      return undefined;
    });
    ended = {
      ...report,
      ...(before && after ? { heldOut: { before, after } } : {}),
      ...(dp ? { privacy: dp.spent() } : {}),
      ...(recordDp ? { recordPrivacy: recordDp.accountant.spent() } : {}),
    };
    return ended;
  } finally {
    heldOut?.stop();
    progress?.stop();
    signals.forEach((s) => process.off(s, onSignal));
    // Before close(): the transport's traffic counts go with the listener.
    monitor.finish();
    await coordinator.close();
    await nats?.close();
    await metricsServer?.close();
    await evaluator?.close();
    let runRecord: string | undefined;
    if (config.runRecord) {
      try {
        await monitor.writeRunRecord(config.runRecord);
        runRecord = config.runRecord;
        process.stderr.write(`run record written to ${config.runRecord}\n`);
      } catch (err) {
        logger.error({ path: config.runRecord, err: (err as Error).message }, 'writing the run record failed');
      }
    }
    if (ended && output.onFinished) {
      output.onFinished({
        report: ended,
        record: monitor.toRunRecord(),
        files: {
          log: config.logStore === 'jetstream' ? `JetStream stream of job ${config.job.jobId}` : config.log,
          ...(runRecord ? { runRecord } : {}),
          ...(metricsServer ? { dashboard: metricsServer.url } : {}),
        },
        heldOut: 'dataset' in heldOutSet ? { dataset: heldOutSet.name, examples: heldOutSet.dataset.size, every: heldOutSet.every } : heldOutSet,
      });
    }
  }
}

type HeldOutSet = { dataset: LocalDataset<FeatureArray>; name: string; every: number } | { off: string };

/** The held-out data the coordinator evaluates on, or why it does not evaluate. */
async function loadHeldOut(config: CoordinatorConfig, manifest: Manifest): Promise<HeldOutSet> {
  if (config.evalEvery === 0) return { off: '--eval-every 0' };
  const every = config.evalEvery ?? Math.max(1, Math.ceil(config.job.rounds / 10));
  if (config.evalData) {
    const { readDatasetFile, featureDtypeForInput } = await import('../shared/data/index.js');
    // Read the way the model reads its input: token ids for an int64 input (a text model), floats otherwise.
    const dtype = featureDtypeForInput(manifest.dataInputs[0]?.elemType);
    const options = manifest.classes === null ? { dtype } : { numClasses: manifest.classes, dtype };
    return { dataset: await readDatasetFile(config.evalData, options), name: basename(config.evalData), every };
  }
  if (config.model) return { off: 'no --eval-data for this model' };
  const { shiftedTestSet } = await import('../shared/model/index.js');
  return { dataset: shiftedTestSet().dataset, name: 'shifted test digits', every };
}

/** Drives a progress display from the coordinator's rounds, the monitor's fleet events and the evaluations. */
function showProgress(bar: ProgressReporter, coordinator: Coordinator, monitor: RunMonitor, done: number): ProgressReporter {
  const fields: Record<string, string> = {};
  let accuracy = '';
  const draw = (): void => bar.update(done, { ...fields, ...(accuracy ? { 'eval acc': accuracy } : {}) });
  const stopRounds = coordinator.onRound((report) => {
    done = report.round + 1;
    fields.loss = Number.isFinite(report.trainLoss) ? report.trainLoss.toFixed(4) : 'n/a';
    fields.answering = `${report.results}/${report.asked}`;
    fields.online = String(report.connected);
    draw();
  });
  const stopEvents = monitor.subscribe((event) => {
    if (event.type === 'evaluation' && event.evaluation.accuracy !== null) {
      accuracy = `${(event.evaluation.accuracy * 100).toFixed(2)}%`;
      draw();
    } else if (event.type === 'fleet' && fields.online === undefined) {
      // Before round 0: how many agents have joined so far.
      bar.update(done, { online: String(event.fleet.connected) });
    }
  });
  draw();
  return {
    update: (n, values) => bar.update(n, values),
    stop: () => {
      stopRounds();
      stopEvents();
      bar.stop();
    },
  };
}

export function registerCoordinatorCommand(program: Command): void {
  addSecureAggregationOptions(addRecordDpOptions(addDpOptions(addNatsOptions(program.command('coordinator')))))
    .description('coordinate a federated MeZO job over gRPC or NATS (durable, seed-replayable update log)')
    .option('--config <file>', 'JSON config file (defaults < file < MEZO_COORDINATOR_* env < flags)')
    .option('--listen <host:port>', 'address to serve on (default 0.0.0.0:7070)')
    .option('--log <path>', 'durable update log; reopening it resumes the job')
    .option('--signing-key <file>', 'Ed25519 key that signs the log entries, created when absent (default: coordinator.key next to the log)')
    .option('--model <dir>', 'prepared model directory (default: the embedded default model)')
    .option('--job-id <id>', 'job id (part of the log header)')
    .option('--rounds <n>', 'total rounds of the job', number)
    .option('--agents-per-round <m>', 'agents asked per round', number)
    .option('--quorum <k>', 'results that close a round (default: all asked)', number)
    .option('--deadline-ms <ms>', 'round deadline', number)
    .option('--max-attempts <n>', 'attempts per round before failing', number)
    .option('--seeds-per-agent <n>', 'seeds each agent evaluates per round', number)
    .option('--seed-mode <mode>', 'shared | distinct | pool')
    .option('--pool-size <k>', 'pool mode: K, the seeds of the job-wide pool', number)
    .option('--sampling <kind>', 'uniform | capability')
    .option('--min-memory <size>', 'capability sampling: memory a task needs, e.g. mezo plan\'s MeZO peak at --batch-size; agents offering less (their --memory-budget when set) are skipped', size)
    .option('--strategy <aggregation>', 'mean | trimmed-mean | median')
    .option('--trim-fraction <x>', 'trimmed mean: fraction cut from each end', number)
    .option('--clip <x>', 'clip |g| before aggregating', number)
    .option('--momentum <beta>', 'seed-space momentum: re-apply the last rounds\' directions decayed by beta^age (default off)', number)
    .option('--momentum-window <W>', 'rounds of history momentum re-applies (default 4)', number)
    .option('--loss-guard <sds>', 'undo the previous round when a round\'s loss jumps this many running sds above its mean (default off)', number)
    .option('--plateau-patience <n>', 'cut the rate when the smoothed training loss stalls this many rounds (default off)', number)
    .option('--plateau-factor <x>', 'what each plateau cut multiplies the rate by (default 0.5)', number)
    .option('--lr <x>', 'learning rate', number)
    .option('--schedule <kind>', 'constant | linear | cosine')
    .option('--min-lr <x>', 'final rate of linear/cosine', number)
    .option('--warmup-steps <n>', 'warm-up rounds', number)
    .option('--seed <n>', 'seed of agent sampling and perturbation seeds')
    .option('--epsilon <x>', 'perturbation size', number)
    .option('--batch-size <n>', 'examples per evaluation', number)
    .option('--distribution <kind>', 'gaussian | rademacher | lowrank (LOZO: rank-r noise on weight matrices)')
    .option('--rank <r>', 'lowrank: the rank r of each matrix perturbation, 1–64', number)
    .option('--v-period <n>', 'rounds that share V (the seeds\' high word); 1 draws every seed afresh', number)
    .option('--heartbeat-ms <ms>', 'ping/heartbeat period', number)
    .option('--token <token>', 'join token agents must present')
    .option('--metrics-listen <host:port>', 'serve the dashboard (/), Prometheus /metrics, /healthz and /readyz here')
    .option('--metrics-token <token>', 'token the dashboard and metrics require (bearer header, cookie or ?token=)')
    .option('--run-record <path>', 'write the run record (run.json, for `mezo report`) when the run ends')
    .option('--eval-data <file>', 'held-out data (.jsonl, .csv, .mzds) to score the weights on (default with the embedded model: its shifted test digits)')
    .option('--eval-every <n>', 'held-out evaluation every n rounds, before the first and after the last (0: never; default: about 10 per run)', number)
    .option('--json', 'print the report as JSON even on a terminal (a pipe always gets JSON)')
    .option('--max-message-bytes <n>', 'largest accepted message', number)
    .option('--tls-cert <pem>', 'serve TLS with this certificate chain (with --tls-key)')
    .option('--tls-key <pem>', 'private key of --tls-cert')
    .option('--tls-client-ca <pem>', 'mutual TLS: require agent certificates signed by this CA')
    .option('--snapshot-every <n>', 'snapshot the weights every n versions, so restarts replay only the tail (0: off)', number)
    .option('--snapshot-dir <dir>', 'where snapshots go (default: snapshots/ next to the log)')
    .option('--keep-versions <n>', 'serve the log only for the newest n versions (never past the newest snapshot); agents further behind download a snapshot', number)
    .option('--compact-every <n>', 'pool mode: append a rebase record (base + the K per-seed coefficient sums) after every n updates', number)
    .option('--rate-limit <n>', 'messages per second each agent may send (0: unlimited; default 100)', number)
    .option('--rate-burst <n>', 'burst of the per-agent rate limit (default 200)', number)
    .option('--log-store <kind>', 'file (the --log file) | jetstream (a JetStream stream on the NATS server; needs --transport nats)')
    .option('--nats-replicas <n>', 'JetStream log: servers that store the stream (default 1)', number)
    .option('--dp-fleet-size <n>', 'central DP: agents that may be sampled, to derive the noise multiplier from --dp-epsilon', number)
    .option('--dp-record-shard-size <n>', "record-level DP: the fewest examples an agent holds (ε is accounted for that agent's data)", number)
    .option('--dp-record-fleet-size <n>', 'record-level DP: agents that may be sampled, to derive the noise multiplier from --dp-record-epsilon', number)
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveCoordinatorConfig(flags);
      // A terminal gets a progress bar and a summary; a pipe (or --json) the JSON report, with JSON log lines.
      const tty = flags.json !== true && process.stderr.isTTY === true;
      const human = flags.json !== true && process.stdout.isTTY === true;
      if (tty && process.env.MEZO_LOG_LEVEL === undefined) (await import('../shared/logger.js')).logger.level = 'warn';
      const { createProgress } = await import('../shared/progress.js');
      const { formatCoordinatorSummary } = await import('./coordinator-summary.js');
      let summary = '';
      const report = await runCoordinator(config, undefined, {
        ...(tty ? { progress: (total: number) => createProgress({ label: 'coordinator', total }) } : {}),
        onFinished: (outcome) => (summary = formatCoordinatorSummary(outcome)),
      });
      process.stdout.write(human ? summary : `${JSON.stringify(report)}\n`);
    });
}
