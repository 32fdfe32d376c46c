/**
 * A simulated fleet on one machine: the real coordinator and N virtual agents running the deployment's Agent
 * code over a real transport (in memory, gRPC on loopback, or NATS), on the default model and its distorted
 * digits split across the agents. The agents share a few weight replicas (shared-replica.ts): in a synchronous
 * round they all hold the same version, so each replica applies every update once and evaluates its agents'
 * tasks in turn on their own data. Faults are drawn per agent and task from the run's seed (faults.ts).
 *
 * Reproducible: without timing-dependent faults, the same options give the same update log, bit for bit, on
 * every transport (the coordinator starts only once every agent is connected, samples from the sorted ids, and
 * aggregates in id order; each agent's batches follow its own seed).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { RoundFailedError, createCoordinator, type Coordinator, type RoundReport, type RunReport } from '../coordinator/index.js';
import { CentralDpStrategy, centralDpOptionsSchema, stopAtPrivacyBudget } from '../coordinator/dp-strategy.js';
import { secureAggregationOptionsSchema } from '../coordinator/secure-aggregation.js';
import { trackRecordPrivacy } from '../coordinator/record-dp.js';
import { recordDpOptionsSchema, resolveRecordDp, type RecordPrivacySpent } from '../shared/privacy/record-dp.js';
import { serveDashboard, type DashboardServer } from '../coordinator/dashboard/server.js';
import { HeldOutEvaluation } from '../coordinator/held-out-evaluation.js';
import { CoordinatorMetrics } from '../coordinator/metrics.js';
import { RunMonitor } from '../coordinator/run-monitor.js';
import type { RunRecord } from '../coordinator/run-record.js';
import { MezoStrategy, lossGuardSchema, momentumSchema, plateauSchema, strategyConfigSchema } from '../coordinator/strategy.js';
import { startAgent, type AgentHandle } from '../edge-agent/start-agent.js';
import { InProcessBackend, type MezoBackend } from '../edge-agent/mezo-backend.js';
import { WorkerBackend } from '../edge-agent/worker-backend.js';
import { lrScheduleSchema } from '../shared/optim/lr-schedule.js';
import { distributionSchema, rankSchema, refinePerturbation, vPeriodSchema } from '../shared/optim/perturbation.js';
import { estimatorSchema } from '../shared/optim/estimator.js';
import { SeededRng } from '../shared/data/index.js';
import { LogSigner, UpdateLog } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import { redactSecrets } from '../shared/redact.js';
import { loadDefaultModel, narrowTrainable, scaleTrainable, type PreparedModel } from '../shared/model/index.js';
import { noise } from '../shared/noise/index.js';
import { GrpcTransport, InMemoryTransport, type Transport } from '../shared/transport/index.js';
import { FaultPlan, faultMiddleware, faultOptionsSchema, type FaultOptions } from './faults.js';
import { FleetData, type FleetDataSummary } from './fleet-data.js';
import { SharedReplica } from './shared-replica.js';

export const TRANSPORTS = ['memory', 'grpc', 'nats'] as const;
export type SimulationTransport = (typeof TRANSPORTS)[number];

/**
 * The default peak learning rate. A distinct seed's coefficient is −lr·g divided among the round's seeds, so
 * the average over more directions is less noisy and bears a larger rate: 8e-3 at 80 seeds per round, scaled
 * by √(seeds / 80) (the noise of a mean falls as 1/√n), up to 1.6e-2 at 320 (the default: 10 agents × 32
 * seeds; more was not measured). A run of R > 300 rounds takes (300 / R)^(3/4) of that. Every round adds
 * noise of variance ∝ lr² in directions the task does not need, and that noise is what costs clean accuracy;
 * the run's progress grows as Σ lr. At (300 / R)^(3/4) the progress still grows (as R^(1/4)) while the total
 * noise (∝ R · lr²) shrinks as R^(−1/2), so a longer run ends more accurate and keeps more of what the model
 * knew (√(300 / R), the earlier rule, held the noise at that of 300 rounds). A shared seed carries the whole
 * step along one direction (4e-4); a small pool revisits its directions, which compounds a large rate
 * (2e-3); neither was measured over longer runs, so both keep their rates. Measured on the default task:
 * docs/learning.md.
 */
export function defaultSimulateLr(seedMode: 'shared' | 'distinct' | 'pool', seedsPerRound: number, rounds = 300): number {
  if (seedMode === 'shared') return 4e-4;
  if (seedMode === 'pool') return 2e-3;
  return 8e-3 * Math.sqrt(Math.min(320, seedsPerRound) / 80) * (300 / Math.max(300, rounds)) ** 0.75;
}

/** Seeds per agent by default: 32 with distinct seeds (directions are the fleet's budget), else 1. */
export const DEFAULT_DISTINCT_SEEDS_PER_AGENT = 32;

export const simulateOptionsSchema = z
  .strictObject({
    agents: z.number().int().min(1).max(100_000).default(100),
    agentsPerRound: z.number().int().min(1).max(100_000).default(10),
    rounds: z.number().int().min(1).max(1_000_000).default(300),
    /** Seeds each asked agent evaluates (q). Default: 32 with distinct seeds (directions are the fleet's budget), else 1. */
    seedsPerAgent: z.number().int().min(1).max(4096).optional(),
    /**
     * Default: 'distinct' with mean aggregation; 'shared' with median or trimmed mean, which need several agents
     * evaluating the same seed to have anything to be robust over.
     */
    seedMode: z.enum(['shared', 'distinct', 'pool']).optional(),
    poolSize: z.number().int().min(1).max(65_536).default(8),
    transport: z.enum(TRANSPORTS).default('memory'),
    /** NATS server for --transport nats (default: start a local nats-server from PATH). */
    natsUrl: z.string().min(1).optional(),
    partitioner: z.enum(['iid', 'dirichlet', 'label-shards']).default('dirichlet'),
    alpha: z.number().positive().finite().default(0.5),
    shardsPerAgent: z.number().int().min(1).max(1000).default(2),
    minPerAgent: z.number().int().min(1).max(4500).default(16),
    batchSize: z.number().int().min(1).max(4096).default(32),
    epsilon: z.number().positive().finite().default(1e-3),
    /** Default 'rademacher': it learns as well as Gaussian noise here and costs a sixth of it (docs/learning.md). */
    distribution: distributionSchema.default('rademacher'),
    /**
     * How agents turn losses into g (shared/optim/estimator.ts): 'central' (two forward passes per seed) or
     * 'forward' (one per seed, centred on the task's mean; needs seedsPerAgent ≥ 2). Default: 'forward' when
     * agents have two seeds or more and no record-level DP runs, else 'central'.
     */
    estimator: estimatorSchema.optional(),
    /** Rank of 'lowrank' noise (required with it, 1–64). */
    rank: rankSchema.optional(),
    /**
     * Which of the default model's tensors train (name globs or /regex/): the others are frozen into the graph
     * (narrowTrainable), so every direction perturbs only these. Default: every tensor.
     */
    trainable: z.array(z.string().min(1)).min(1).optional(),
    /**
     * Per-tensor step sizes (scaleTrainable): the trainable tensors a pattern selects are reparametrised as
     * factor · W', so zeroth-order steps on them are factor² as large. Factors are powers of two.
     */
    tensorScales: z.array(z.strictObject({ pattern: z.string().min(1), factor: z.number().positive().finite() })).optional(),
    /** Rounds over which the seeds keep their high word: with 'lowrank', V (LOZO's lazy V); 1: fresh seeds. */
    vPeriod: vPeriodSchema.default(1),
    /**
     * Default: a cosine decay over the run (so a longer run ends on small steps instead of drifting), from the
     * peak rate defaultSimulateLr gives for the seed mode and seeds per round (docs/learning.md).
     */
    schedule: z
      .strictObject({
        kind: z.enum(['constant', 'linear', 'cosine']).default('cosine'),
        lr: z.number().positive().finite().optional(),
        minLr: z.number().nonnegative().finite().default(0),
        warmupSteps: z.number().int().nonnegative().default(0),
        /** Rounds a linear or cosine decay takes (default: the whole run). */
        totalSteps: z.number().int().positive().optional(),
      })
      .prefault({}),
    aggregation: z.enum(['mean', 'trimmed-mean', 'median']).default('mean'),
    clip: z.number().positive().finite().optional(),
    /** Seed-space momentum, the loss-jump guard and reduce-on-plateau (coordinator/strategy.ts; off by default). */
    momentum: momentumSchema.optional(),
    lossGuard: lossGuardSchema.optional(),
    plateau: plateauSchema.optional(),
    /**
     * Central agent-level DP (coordinator/dp-strategy.ts, docs/privacy.md): each agent's values clipped to L2 norm
     * `clip`, Gaussian noise of multiplier `noiseMultiplier` (or the one that `epsilon` at `delta` needs over the
     * run at agentsPerRound / agents) on the released coefficients; with `epsilon`, the run ends at the budget.
     */
    dp: centralDpOptionsSchema(false).optional(),
    /**
     * Record-level DP on the agents (shared/privacy/record-dp.ts, docs/privacy.md): each example's projected
     * gradient clipped, noise of multiplier `noiseMultiplier` (or the one `epsilon` at `delta` needs over the run
     * for the smallest shard) on each agent's g; `private`: agents send no losses. With `epsilon`, the run ends at
     * the budget.
     */
    recordDp: recordDpOptionsSchema(false).optional(),
    /**
     * Secure aggregation (coordinator/secure-aggregation.ts, docs/privacy.md): the coordinator learns only the sum
     * of each round's answers; `threshold` θ and `neighbours` k (0: every other agent of the round). Needs shared
     * seeds and the mean.
     */
    secureAggregation: secureAggregationOptionsSchema.optional(),
    /** Fraction of the agents asked whose answers close a round (default: all, or 0.5 with dropout or crashes). */
    quorum: z.number().gt(0).max(1).optional(),
    deadlineMs: z.number().int().min(1).max(3_600_000).default(1000),
    maxAttempts: z.number().int().min(1).max(100).default(10),
    faults: faultOptionsSchema.prefault({}),
    /** Seeds the partition, the device shifts, the strategy and the faults. */
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
    /** Weight replicas (each on its own worker thread unless worker is false). */
    replicas: z.number().int().min(1).max(64).default(1),
    worker: z.boolean().default(true),
    /** Evaluate the shifted-test accuracy every this many rounds (default: about ten times per run). */
    evalEvery: z.number().int().min(1).optional(),
    /** Agent data shares kept built at once. */
    cacheShares: z.number().int().min(1).default(2048),
    /** Where the update log and run.json are written (replaced at the start of a run); none: kept in memory. */
    out: z.string().min(1).optional(),
    /** Serve the live dashboard and /metrics at host:port (port 0: any free one) while the run lasts. */
    dashboardListen: z
      .string()
      .regex(/^[^:\s]*:[0-9]{1,5}$/, 'must be host:port (an empty host means 127.0.0.1)')
      .optional(),
    /** Token the dashboard requires (empty: none; only sensible on loopback). */
    dashboardToken: z.string().max(1024).default(''),
  })
  .transform((o, ctx) => {
    const seedMode = o.seedMode ?? (o.aggregation === 'mean' ? 'distinct' : 'shared');
    const seedsPerAgent = o.seedsPerAgent ?? (seedMode === 'distinct' ? DEFAULT_DISTINCT_SEEDS_PER_AGENT : 1);
    const estimator = o.estimator ?? (seedsPerAgent >= 2 && o.recordDp === undefined ? 'forward' : 'central');
    const schedule = lrScheduleSchema.safeParse({
      ...o.schedule,
      lr: o.schedule.lr ?? defaultSimulateLr(seedMode, o.agentsPerRound * seedsPerAgent, o.rounds),
      totalSteps: o.schedule.totalSteps ?? (o.schedule.kind === 'constant' ? undefined : o.rounds),
    });
    if (!schedule.success) {
      const issue = schedule.error.issues[0]!;
      ctx.addIssue({ code: 'custom', path: ['schedule', ...issue.path.map(String)], message: issue.message });
      return z.NEVER;
    }
    return { ...o, seedMode, seedsPerAgent, estimator, schedule: schedule.data };
  })
  .refine((o) => o.agentsPerRound <= o.agents, { path: ['agentsPerRound'], message: 'must not exceed agents' })
  .refine((o) => o.seedMode !== 'pool' || o.seedsPerAgent <= o.poolSize, { path: ['seedsPerAgent'], message: 'must not exceed poolSize in pool mode' })
  .refine((o) => o.vPeriod === 1 || o.seedMode !== 'pool', { path: ['vPeriod'], message: "must be 1 in pool mode (the pool's seeds are fixed for the job)" })
  .superRefine(refinePerturbation);
export type SimulateOptions = z.output<typeof simulateOptionsSchema>;
export type SimulateOptionsInput = z.input<typeof simulateOptionsSchema>;

export class SimulationError extends Error {
  override name = 'SimulationError';
}

/** Parses options with an error that names the field. */
export function parseSimulateOptions(input: SimulateOptionsInput): SimulateOptions {
  const parsed = simulateOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SimulationError(`simulate: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

export interface RoundProgress {
  round: number;
  roundsDone: number;
  rounds: number;
  trainLoss: number;
  asked: number;
  answered: number;
  /** Shifted-test accuracy of the newest evaluation (undefined before the first). */
  accuracy: number | undefined;
}

export interface ReadyFleet {
  coordinator: Coordinator;
  monitor: RunMonitor;
  dashboardUrl: string | undefined;
}

export interface SimulationHooks {
  /** Called after each committed round. */
  onProgress?: (progress: RoundProgress) => void;
  /** Called with each evaluation of the coordinator's weights (round −1: before training). */
  onEvaluation?: (round: number, accuracy: number, loss: number) => void;
  /**
   * Once every agent is connected and before the first round: the coordinator, its run monitor and the
   * dashboard's URL when one is served. The run waits for a returned promise (a test may open the page first).
   */
  onReady?: (ready: ReadyFleet) => void | Promise<void>;
  /** After the last round and the final evaluation, before anything shuts down (the dashboard still serves). */
  onFinished?: (ready: ReadyFleet) => void | Promise<void>;
}

export interface TrafficSummary {
  /** Over every agent id that joined: mean and largest bytes sent up and down. */
  meanBytesUp: number;
  meanBytesDown: number;
  maxBytesUp: number;
  maxBytesDown: number;
  /** Mean bytes per agent per committed round, up and down. */
  bytesUpPerAgentRound: number;
  bytesDownPerAgentRound: number;
}

export interface SimulationReport {
  options: SimulateOptions;
  data: FleetDataSummary;
  transport: SimulationTransport;
  accuracyBefore: number;
  accuracyAfter: number;
  lossBefore: number;
  lossAfter: number;
  /** Evaluations during the run: [round, accuracy]. */
  accuracyByRound: Array<[number, number]>;
  rounds: number;
  /** Attempts that closed without quorum and were retried (NaN when the run failed). */
  failedAttempts: number;
  /** Why the run ended before its last round (a round that never reached quorum). */
  failure?: string;
  /** The whole run: loading the model and data, starting the agents, training, evaluating, auditing. */
  wallSeconds: number;
  /**
   * The run record's wallSeconds: from every agent connected (the monitor's start) to the end of the run, the
   * evaluations and the audit included; wallSeconds minus this is the set-up.
   */
  runSeconds: number;
  /** Rounds per second of coordinator.run() alone (no set-up, no initial or final evaluation). */
  roundsPerSecond: number;
  logVersion: number;
  logHeadHash: string;
  weightsSha256: string;
  traffic: TrafficSummary;
  /** Over all agents: results merged, late, lost with a dropped session, rejected (by reason); heartbeats whose weights hash differed from the coordinator's. */
  results: { accepted: number; late: number; dropped: number; rejected: number; rejections: Record<string, number>; divergent: number };
  faults: { byzantineAgents: number; crashes: number; timingDependent: boolean };
  /**
   * End-of-run audit: replicas whose weights hash equals the coordinator's materialisation of the log (their
   * updates were applied by the agents' own code), and agents whose chain head is the log head.
   */
  audit: { replicas: number; replicasMatching: number; agents: number; agentsAtHead: number };
  sharesBuilt: number;
  /** Where the run record (coordinator/run-record.ts, for `mezo report`) was written, with --out. */
  runRecord?: string;
  /** With central DP: the noise multiplier used, ε spent at δ, the rounds released, and whether the budget holds no further round. */
  privacy?: { noiseMultiplier: number; epsilon: number; delta: number; roundsReleased: number; budgetSpent: boolean };
  /** With record-level DP: ε per agent's data (the smallest shard) at δ, σ, clip, rounds accounted, private mode. */
  recordPrivacy?: RecordPrivacySpent;
}

interface NatsLink {
  transport: Transport;
  agentTransport: Transport;
  close(): Promise<void>;
}

/** The NATS transport is loaded only when asked for, with the server it needs. */
async function natsLink(options: SimulateOptions): Promise<NatsLink> {
  const { createSimulationNatsLink } = await import('./nats-link.js');
  return createSimulationNatsLink(options.natsUrl, 'simulate');
}

async function createReplica(prepared: PreparedModel, options: SimulateOptions): Promise<SharedReplica> {
  const common = { distribution: options.distribution, rank: options.rank, restore: 'reload' as const, checkpointInMemory: true, intraOpThreads: 1 };
  const backend: MezoBackend = options.worker
    ? await WorkerBackend.start(prepared, { ...common, noiseThreads: 1 })
    : await InProcessBackend.create(prepared, noise, common);
  return SharedReplica.create(backend);
}

function summariseTraffic(traffic: ReadonlyMap<string, { bytesUp: number; bytesDown: number }>, rounds: number): TrafficSummary {
  const all = [...traffic.values()];
  const n = Math.max(1, all.length);
  const up = all.reduce((s, t) => s + t.bytesUp, 0);
  const down = all.reduce((s, t) => s + t.bytesDown, 0);
  return {
    meanBytesUp: up / n,
    meanBytesDown: down / n,
    maxBytesUp: Math.max(0, ...all.map((t) => t.bytesUp)),
    maxBytesDown: Math.max(0, ...all.map((t) => t.bytesDown)),
    bytesUpPerAgentRound: up / n / Math.max(1, rounds),
    bytesDownPerAgentRound: down / n / Math.max(1, rounds),
  };
}

const agentName = (k: number, width: number): string => `agent-${String(k).padStart(width, '0')}`;

export async function runSimulation(input: SimulateOptionsInput = {}, hooks: SimulationHooks = {}): Promise<SimulationReport> {
  const options = parseSimulateOptions(input);
  const started = performance.now();
  const full = await loadDefaultModel();
  const narrowed = options.trainable ? narrowTrainable(full, options.trainable) : full;
  const prepared = options.tensorScales ? scaleTrainable(narrowed, options.tensorScales, 'tensorScales') : narrowed;
  const data = new FleetData({
    agents: options.agents,
    partitioner: options.partitioner,
    alpha: options.alpha,
    shardsPerAgent: options.shardsPerAgent,
    minPerAgent: options.minPerAgent,
    seed: options.seed,
    cacheShares: options.cacheShares,
  });
  const faults = new FaultPlan(options.faults, options.agents, options.seed);
  const asked = options.agentsPerRound;
  const faulty = faults.timingDependent;
  const quorum = Math.max(1, Math.ceil((options.quorum ?? (options.faults.dropout > 0 || options.faults.crash > 0 ? 0.5 : 1)) * asked));
  const header = { jobId: 'simulate', baseSha256: prepared.manifest.slabSha256, distribution: options.distribution, rank: options.rank, decayRanges: [] };
  // Signed like a deployed coordinator's log, so every virtual agent checks signatures as a real one does (a key
  // for this run only; agents verify each update once per process, whatever their number).
  const signer = LogSigner.generate();
  let log: UpdateLog;
  if (options.out) {
    const dir = resolve(options.out);
    mkdirSync(dir, { recursive: true });
    rmSync(join(dir, 'update.log'), { force: true });
    log = await UpdateLog.open(join(dir, 'update.log'), header, { signer });
  } else {
    log = UpdateLog.inMemory(header, { signer });
  }

  let coordinatorTransport: Transport;
  let agentTransport: (() => Transport) | undefined;
  let nats: NatsLink | undefined;
  switch (options.transport) {
    case 'memory': {
      const shared = new InMemoryTransport();
      coordinatorTransport = shared;
      agentTransport = () => shared;
      break;
    }
    case 'grpc':
      coordinatorTransport = new GrpcTransport({ address: '127.0.0.1:0' });
      break;
    case 'nats':
      nats = await natsLink(options);
      coordinatorTransport = nats.transport;
      agentTransport = () => nats!.agentTransport;
      break;
  }

  const strategy = strategyConfigSchema.parse({
    agentsPerRound: asked,
    seedMode: options.seedMode,
    seedsPerAgent: options.seedsPerAgent,
    vPeriod: options.vPeriod,
    poolSize: options.poolSize,
    aggregation: options.aggregation,
    ...(options.clip === undefined ? {} : { clip: options.clip }),
    ...(options.momentum ? { momentum: options.momentum } : {}),
    ...(options.lossGuard ? { lossGuard: options.lossGuard } : {}),
    ...(options.plateau ? { plateau: options.plateau } : {}),
    schedule: options.schedule,
    seed: options.seed,
  });
  const dp = options.dp
    ? new CentralDpStrategy(new MezoStrategy(strategy), { ...options.dp, rounds: options.rounds, fleetSize: options.agents })
    : undefined;
  // The accountant covers the agent with the fewest examples: its records are the most often in a batch.
  const recordDp = options.recordDp
    ? resolveRecordDp(options.recordDp, {
        agentsPerRound: asked,
        fleetSize: options.agents,
        batchSize: options.batchSize,
        shardSize: Math.max(1, data.summary.examplesPerAgent.min),
        rounds: options.rounds,
      })
    : undefined;
  // The library's wiring (coordinator/create-coordinator.ts), as `mezo coordinator` uses it. The metrics are made
  // once the fleet has joined (below) and fed by the run monitor, so the handle keeps none of its own.
  const handle = createCoordinator({
    ...(dp ? { strategy: dp } : {}),
    ...(options.secureAggregation ? { secureAggregation: options.secureAggregation } : {}),
    log,
    model: prepared,
    engine: noise,
    transport: coordinatorTransport,
    options: {
      jobId: 'simulate',
      rounds: options.rounds,
      quorum,
      deadlineMs: options.deadlineMs,
      maxAttempts: options.maxAttempts,
      waitForAgentsMs: Math.max(options.deadlineMs, 5000),
      epsilon: options.epsilon,
      batchSize: options.batchSize,
      distribution: options.distribution,
      rank: options.rank,
      estimator: options.estimator,
      ...(recordDp ? { recordDp: recordDp.dp } : {}),
      strategy,
      heartbeatMs: 5000,
      // Virtual agents share one process: a budget per agent would only throttle the simulation itself.
      rateLimit: { perSecond: 0 },
      maxAgents: options.agents,
    },
    metrics: false,
  });
  const coordinator = handle.coordinator;

  const replicas: SharedReplica[] = [];
  const agents: AgentHandle[] = new Array(options.agents);
  const runs = new Set<Promise<void>>();
  const agentErrors: Error[] = [];
  const evaluator = await InProcessBackend.create(prepared, noise, { restore: 'subtract', intraOpThreads: 1 });
  let crashes = 0;
  let closing = false;
  let metrics: CoordinatorMetrics | undefined;
  let monitor: RunMonitor | undefined;
  let dashboard: DashboardServer | undefined;
  try {
    await handle.listen();
    if (!agentTransport) {
      const shared = new GrpcTransport({ address: coordinator.address! });
      agentTransport = () => shared;
    }
    for (let r = 0; r < options.replicas; r++) replicas.push(await createReplica(prepared, options));
    const width = String(options.agents - 1).length;
    const incarnations = new Uint32Array(options.agents);

    const start = (k: number): void => {
      const incarnation = incarnations[k]!;
      const replica = replicas[k % replicas.length]!;
      const forger = new SeededRng(options.seed, 'simulate-forge', k, incarnation);
      const crash = (): void => {
        crashes++;
        // Off the agent's own task chain: close() waits for the work in hand, which is this task.
        setImmediate(() => {
          const run = agents[k]!.close().then(() => {
            if (closing) return;
            setTimeout(() => {
              if (closing) return;
              incarnations[k]!++;
              start(k);
            }, options.faults.rejoinMs);
          });
          runs.add(run);
          void run.finally(() => runs.delete(run));
        });
      };
      // Only the agents with faults to inject carry the middleware: the others evaluate as a real agent does.
      const evaluation = faulty || faults.isByzantine(k)
        ? [faultMiddleware({ plan: faults, agent: k, incarnation, name: agentName(k, width), forger, crash })]
        : [];
      // Started at once, as a deployed agent is (startAgent); the round loop waits below until all have joined.
      const agent = startAgent({
        agentId: agentName(k, width),
        transport: agentTransport!(),
        prepared,
        createBackend: async () => replica.view(),
        evaluation,
        data: () => data.share(k),
        dataSeed: k,
        keepLogReplica: false,
        capabilities: { cores: 1, memoryBytes: 0, noiseImpl: noise.kind },
        reconnect: { initialMs: 50, maxMs: 2000 },
      });
      agents[k] = agent;
      const run = agent.waitForEnd().catch((err: Error) => {
        agentErrors.push(err);
      });
      runs.add(run);
      void run.finally(() => runs.delete(run));
    };
    for (let k = 0; k < options.agents; k++) start(k);

    // Every agent connected before round 0, so the first sample is drawn from the whole fleet.
    const joinDeadline = Date.now() + 60_000 + options.agents * 20;
    while (coordinator.connectedAgents().length < options.agents) {
      if (agentErrors.length > 0) throw new SimulationError(`an agent failed to start: ${agentErrors[0]!.message}`, { cause: agentErrors[0] });
      if (Date.now() > joinDeadline) {
        throw new SimulationError(`only ${coordinator.connectedAgents().length} of ${options.agents} agents connected within the join deadline`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    metrics = new CoordinatorMetrics(coordinator);
    // Before the monitor: the accountant hears each round first, so the round's row shows ε after it.
    if (recordDp) trackRecordPrivacy(coordinator, recordDp.accountant);
    monitor = new RunMonitor({
      coordinator,
      metrics,
      kind: 'simulate',
      config: JSON.parse(JSON.stringify(options)) as Record<string, unknown>,
      ...(dp ? { privacy: () => dp.spent() } : {}),
      ...(recordDp ? { recordPrivacy: () => recordDp.accountant.spent() } : {}),
    });
    if (options.dashboardListen !== undefined) {
      const at = options.dashboardListen.lastIndexOf(':');
      dashboard = await serveDashboard({
        metrics,
        monitor,
        host: options.dashboardListen.slice(0, at) || '127.0.0.1',
        port: Number(options.dashboardListen.slice(at + 1)),
        ...(options.dashboardToken ? { token: options.dashboardToken } : {}),
        health: coordinator.health,
      });
    }
    await hooks.onReady?.({ coordinator, monitor, dashboardUrl: dashboard?.url });

    // The coordinator's weights on the shifted test digits: before round 0, every evalEvery rounds, at the end.
    const accuracyByRound: Array<[number, number]> = [];
    let latestAccuracy: number | undefined;
    const heldOut = new HeldOutEvaluation({
      coordinator,
      backend: evaluator,
      dataset: data.shiftedTest,
      every: options.evalEvery ?? Math.max(1, Math.ceil(options.rounds / 10)),
      rounds: options.rounds,
      monitor,
      onEvaluation: ({ round, accuracy, loss }) => {
        latestAccuracy = accuracy!;
        accuracyByRound.push([round, accuracy!]);
        hooks.onEvaluation?.(round, accuracy!, loss);
      },
    });
    const before = await heldOut.evaluateHead();
    if (dp) stopAtPrivacyBudget(coordinator, dp);
    let roundsDone = 0;
    const unsubscribe = coordinator.onRound((report: RoundReport) => {
      roundsDone++;
      hooks.onProgress?.({
        round: report.round,
        roundsDone,
        rounds: options.rounds,
        trainLoss: report.trainLoss,
        asked: report.asked,
        answered: report.results,
        accuracy: latestAccuracy,
      });
    });
    const trainingStarted = performance.now();
    let run: RunReport;
    let failure: string | undefined;
    try {
      run = await handle.run();
    } catch (err) {
      // A fleet that cannot reach quorum (say, a model wrecked by byzantine answers under mean aggregation,
      // whose losses are no longer finite) ends the run; the report says where and why.
      if (!(err instanceof RoundFailedError)) throw err;
      failure = err.message;
      run = { roundsRun: roundsDone, version: log.version, headHash: log.headHash, failedAttempts: Number.NaN, stopped: true };
    } finally {
      unsubscribe();
    }
    const trainingSeconds = (performance.now() - trainingStarted) / 1000;
    const after = (await heldOut.finish())!;

    // Agents not asked in the last round apply its update when the broadcast reaches them.
    const head = coordinator.log.headHash;
    const live = (): AgentHandle[] => agents.filter((a) => a !== undefined);
    for (const deadline = Date.now() + 5000; Date.now() < deadline && !live().every((a) => a.state.headHash === head); ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const materialised = coordinator.weightsSha256();
    let replicasMatching = 0;
    for (const replica of replicas) {
      if (replica.version === coordinator.log.version && (await replica.backend.sha256()) === materialised) replicasMatching++;
    }
    const audit = { replicas: replicas.length, replicasMatching, agents: live().length, agentsAtHead: live().filter((a) => a.state.headHash === head).length };

    await hooks.onFinished?.({ coordinator, monitor, dashboardUrl: dashboard?.url });
    monitor.finish();
    let runRecord: string | undefined;
    let record: RunRecord;
    if (options.out) {
      runRecord = join(resolve(options.out), 'run.json');
      record = await monitor.writeRunRecord(runRecord);
    } else {
      record = monitor.toRunRecord();
    }

    const statuses = coordinator.agentStatuses();
    const results = { accepted: 0, late: 0, dropped: 0, rejected: 0, rejections: {} as Record<string, number>, divergent: 0 };
    for (const { stats } of statuses) {
      results.accepted += stats.accepted;
      results.late += stats.late;
      results.dropped += stats.dropped;
      results.rejected += stats.rejected;
      results.divergent += stats.divergent;
      for (const [reason, count] of Object.entries(stats.rejections)) results.rejections[reason] = (results.rejections[reason] ?? 0) + (count ?? 0);
    }
    return {
      // The report is written to disk and printed: no credential in it.
      options: redactSecrets(options),
      data: data.summary,
      transport: options.transport,
      accuracyBefore: before.accuracy!,
      accuracyAfter: after.accuracy!,
      lossBefore: before.loss,
      lossAfter: after.loss,
      accuracyByRound,
      rounds: run.roundsRun,
      failedAttempts: run.failedAttempts,
      ...(failure === undefined ? {} : { failure }),
      wallSeconds: (performance.now() - started) / 1000,
      runSeconds: record.summary.wallSeconds,
      roundsPerSecond: run.roundsRun / trainingSeconds,
      logVersion: run.version,
      logHeadHash: run.headHash,
      weightsSha256: coordinator.weightsSha256(),
      traffic: summariseTraffic(coordinator.traffic(), run.roundsRun),
      results,
      faults: { byzantineAgents: faults.byzantineCount, crashes, timingDependent: faulty },
      audit,
      ...(runRecord === undefined ? {} : { runRecord }),
      ...(dp
        ? { privacy: dp.spent() }
        : {}),
      ...(recordDp ? { recordPrivacy: recordDp.accountant.spent() } : {}),
      sharesBuilt: data.sharesBuilt,
    };
  } finally {
    closing = true;
    monitor?.finish();
    await dashboard?.close();
    await Promise.all(agents.filter(Boolean).map((a) => a.close().catch(() => undefined)));
    await Promise.all([...runs]);
    await handle.close().catch((err: Error) => logger.warn({ err: err.message }, 'closing the coordinator failed'));
    await Promise.all(replicas.map((r) => r.close()));
    await evaluator.close();
    await nats?.close();
  }
}

export type { FaultOptions };
