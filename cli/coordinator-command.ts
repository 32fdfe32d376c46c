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
import { roundOptionsSchema } from '../coordinator/options.js';
import { centralDpOptionsSchema } from '../coordinator/dp-strategy.js';
import { secureAggregationOptionsSchema } from '../coordinator/secure-aggregation.js';
import { secureAggregationOptionSpecs } from './secure-aggregation-options.js';
import { dpOptionSpecs, recordDpOptionSpecs, type PrivacySpent } from './dp-options.js';
import { recordDpOptionsSchema, type RecordPrivacySpent } from '../shared/privacy/record-dp.js';
import { size } from './option-parsing.js';
import { configFlag, defineCommandOptions } from './command-options.js';
import { natsConfigSchema, natsOptionSpecs, openCoordinatorNats } from './nats-options.js';

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

/**
 * Every flag of `mezo coordinator`, in --help order: its config key and help (cli/command-options.ts derives the
 * flag's spelling, its MEZO_COORDINATOR_* variable and its parser from these and the schema).
 */
export const coordinatorOptions = defineCommandOptions(coordinatorConfigSchema, 'MEZO_COORDINATOR', {
  ...natsOptionSpecs,
  ...dpOptionSpecs,
  ...recordDpOptionSpecs,
  ...secureAggregationOptionSpecs,
  config: configFlag('MEZO_COORDINATOR'),
  listen: { key: 'listen', arg: '<host:port>', help: 'address to serve on (default 0.0.0.0:7070)' },
  log: { key: 'log', arg: '<path>', help: 'durable update log; reopening it resumes the job' },
  signingKey: { key: 'signingKey', arg: '<file>', help: 'Ed25519 key that signs the log entries, created when absent (default: coordinator.key next to the log)' },
  model: { key: 'model', arg: '<dir>', help: 'prepared model directory (default: the embedded default model)' },
  jobId: { key: 'job.jobId', arg: '<id>', help: 'job id (part of the log header)' },
  rounds: { key: 'job.rounds', help: 'total rounds of the job' },
  agentsPerRound: { key: 'job.strategy.agentsPerRound', arg: '<m>', help: 'agents asked per round' },
  quorum: { key: 'job.quorum', arg: '<k>', help: 'results that close a round (default: all asked)' },
  deadlineMs: { key: 'job.deadlineMs', arg: '<ms>', help: 'round deadline' },
  maxAttempts: { key: 'job.maxAttempts', help: 'attempts per round before failing' },
  seedsPerAgent: { key: 'job.strategy.seedsPerAgent', help: 'seeds each agent evaluates per round' },
  seedMode: { key: 'job.strategy.seedMode', arg: '<mode>', help: 'shared | distinct | pool' },
  poolSize: { key: 'job.strategy.poolSize', arg: '<k>', help: 'pool mode: K, the seeds of the job-wide pool' },
  sampling: { key: 'job.strategy.sampling', arg: '<kind>', help: 'uniform | capability' },
  minMemory: {
    key: 'job.strategy.minMemoryBytes',
    arg: '<size>',
    parse: size,
    help: "capability sampling: memory a task needs, e.g. mezo plan's MeZO peak at --batch-size; agents offering less (their --memory-budget when set) are skipped",
  },
  strategy: { key: 'job.strategy.aggregation', arg: '<aggregation>', help: 'mean | trimmed-mean | median' },
  trimFraction: { key: 'job.strategy.trimFraction', arg: '<x>', help: 'trimmed mean: fraction cut from each end' },
  clip: { key: 'job.strategy.clip', arg: '<x>', help: 'clip |g| before aggregating' },
  momentum: { key: 'job.strategy.momentum.beta', arg: '<beta>', help: "seed-space momentum: re-apply the last rounds' directions decayed by beta^age (default off)" },
  momentumWindow: { key: 'job.strategy.momentum.window', arg: '<W>', help: 'rounds of history momentum re-applies (default 4)' },
  lossGuard: { key: 'job.strategy.lossGuard.threshold', arg: '<sds>', help: "undo the previous round when a round's loss jumps this many running sds above its mean (default off)" },
  plateauPatience: { key: 'job.strategy.plateau.patience', help: 'cut the rate when the smoothed training loss stalls this many rounds (default off)' },
  plateauFactor: { key: 'job.strategy.plateau.factor', arg: '<x>', help: 'what each plateau cut multiplies the rate by (default 0.5)' },
  lr: { key: 'job.strategy.schedule.lr', arg: '<x>', help: 'learning rate' },
  schedule: { key: 'job.strategy.schedule.kind', arg: '<kind>', help: 'constant | linear | cosine' },
  minLr: { key: 'job.strategy.schedule.minLr', arg: '<x>', help: 'final rate of linear/cosine' },
  warmupSteps: { key: 'job.strategy.schedule.warmupSteps', help: 'warm-up rounds' },
  seed: { key: 'job.strategy.seed', arg: '<n>', help: 'seed of agent sampling and perturbation seeds' },
  epsilon: { key: 'job.epsilon', arg: '<x>', help: 'perturbation size' },
  batchSize: { key: 'job.batchSize', help: 'examples per evaluation' },
  distribution: { key: 'job.distribution', arg: '<kind>', help: 'gaussian | rademacher | lowrank (LOZO: rank-r noise on weight matrices)' },
  estimator: { key: 'job.estimator', arg: '<kind>', help: "central | forward: agents' two forward passes per seed, or one centred on the task's mean (needs --seeds-per-agent ≥ 2)" },
  rank: { key: 'job.rank', arg: '<r>', help: 'lowrank: the rank r of each matrix perturbation, 1–64' },
  vPeriod: { key: 'job.strategy.vPeriod', help: "rounds that share V (the seeds' high word); 1 draws every seed afresh" },
  heartbeatMs: { key: 'job.heartbeatMs', arg: '<ms>', help: 'ping/heartbeat period' },
  token: { key: 'job.token', arg: '<token>', help: 'join token agents must present' },
  metricsListen: { key: 'metricsListen', arg: '<host:port>', help: 'serve the dashboard (/), Prometheus /metrics, /healthz and /readyz here' },
  metricsToken: { key: 'metricsToken', arg: '<token>', help: 'token the dashboard and metrics require (bearer header, cookie or ?token=)' },
  runRecord: { key: 'runRecord', arg: '<path>', help: 'write the run record (run.json, for `mezo report`) when the run ends' },
  evalData: {
    key: 'evalData',
    arg: '<file>',
    help: 'held-out data (.jsonl, .csv, .mzds) to score the weights on (default with the embedded model: its shifted test digits)',
  },
  evalEvery: { key: 'evalEvery', help: 'held-out evaluation every n rounds, before the first and after the last (0: never; default: about 10 per run)' },
  json: { help: 'print the report as JSON even on a terminal (a pipe always gets JSON)' },
  maxMessageBytes: { key: 'maxMessageBytes', help: 'largest accepted message' },
  tlsCert: { key: 'tlsCert', arg: '<pem>', help: 'serve TLS with this certificate chain (with --tls-key)' },
  tlsKey: { key: 'tlsKey', arg: '<pem>', help: 'private key of --tls-cert' },
  tlsClientCa: { key: 'tlsClientCa', arg: '<pem>', help: 'mutual TLS: require agent certificates signed by this CA' },
  snapshotEvery: { key: 'snapshotEvery', help: 'snapshot the weights every n versions, so restarts replay only the tail (0: off)' },
  snapshotDir: { key: 'snapshotDir', arg: '<dir>', help: 'where snapshots go (default: snapshots/ next to the log)' },
  keepVersions: {
    key: 'keepVersions',
    help: 'serve the log only for the newest n versions (never past the newest snapshot); agents further behind download a snapshot',
  },
  compactEvery: { key: 'job.compactEvery', help: 'pool mode: append a rebase record (base + the K per-seed coefficient sums) after every n updates' },
  rateLimit: { key: 'job.rateLimit.perSecond', help: 'messages per second each agent may send (0: unlimited; default 100)' },
  rateBurst: { key: 'job.rateLimit.burst', help: 'burst of the per-agent rate limit (default 200)' },
  logStore: { key: 'logStore', arg: '<kind>', help: 'file (the --log file) | jetstream (a JetStream stream on the NATS server; needs --transport nats)' },
  natsReplicas: { key: 'nats.replicas', help: 'JetStream log: servers that store the stream (default 1)' },
  dpFleetSize: { key: 'dp.fleetSize', help: 'central DP: agents that may be sampled, to derive the noise multiplier from --dp-epsilon' },
  dpRecordShardSize: { key: 'recordDp.shardSize', help: "record-level DP: the fewest examples an agent holds (ε is accounted for that agent's data)" },
  dpRecordFleetSize: { key: 'recordDp.fleetSize', help: 'record-level DP: agents that may be sampled, to derive the noise multiplier from --dp-record-epsilon' },
});

/** Defaults < --config file < MEZO_COORDINATOR_* < flags. */
export function resolveCoordinatorConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  return coordinatorOptions.resolve(flags, env);
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
  const { loadPrepared, loadDefaultModel } = await import('../shared/model/index.js');
  const { LogSigner, UpdateLog } = await import('../shared/log/index.js');
  const { noise } = await import('../shared/noise/index.js');
  const { GrpcTransport, serverTlsCredentials } = await import('../shared/transport/index.js');
  const { createCoordinator } = await import('../coordinator/create-coordinator.js');
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
  // The library's wiring (coordinator/create-coordinator.ts); the run monitor below feeds the metrics, so the
  // handle keeps none of its own.
  const handle = createCoordinator({
    ...(dp ? { strategy: dp } : {}),
    ...(config.secureAggregation ? { secureAggregation: config.secureAggregation } : {}),
    log,
    model: prepared,
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
    metrics: false,
  });
  const coordinator = handle.coordinator;
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
    const address = await handle.listen();
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
    const report = await handle.run();
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
    await handle.close();
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
  coordinatorOptions
    .register(program.command('coordinator'))
    .description('coordinate a federated MeZO job over gRPC or NATS (durable, seed-replayable update log)')
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
