/**
 * `mezo simulate`: a whole federated job on this machine with no configuration — the default model, its
 * distorted digits split across N non-IID virtual agents, the coordinator, a progress bar — then a report
 * (text, and JSON in --out). Flags vary what users vary; the same flags and seed give the same update log.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { resolveConfig, type EnvBinding } from '../shared/config/index.js';
import { simulateOptionsSchema, type SimulateOptions, type SimulationReport } from '../simulation/simulate.js';
import { DP_FLAGS, RECORD_DP_FLAGS, addDpOptions, addRecordDpOptions, formatPrivacy } from './dp-options.js';
import { formatRecordPrivacy } from '../shared/privacy/record-dp.js';
import { layeredFlags, number } from './option-parsing.js';
import { SECURE_AGGREGATION_FLAGS, addSecureAggregationOptions } from './secure-aggregation-options.js';

export const DEFAULT_SIMULATE_OUT = 'mezo-simulate';

const ENV: Record<string, EnvBinding> = {
  MEZO_SIMULATE_AGENTS: { path: 'agents', type: 'number' },
  MEZO_SIMULATE_AGENTS_PER_ROUND: { path: 'agentsPerRound', type: 'number' },
  MEZO_SIMULATE_ROUNDS: { path: 'rounds', type: 'number' },
  MEZO_SIMULATE_TRANSPORT: { path: 'transport', type: 'string' },
  MEZO_SIMULATE_NATS_URL: { path: 'natsUrl', type: 'string' },
  MEZO_SIMULATE_SEED: { path: 'seed', type: 'number' },
  MEZO_SIMULATE_OUT: { path: 'out', type: 'string' },
  MEZO_SIMULATE_REPLICAS: { path: 'replicas', type: 'number' },
  MEZO_SIMULATE_DASHBOARD_LISTEN: { path: 'dashboardListen', type: 'string' },
  MEZO_SIMULATE_DASHBOARD_TOKEN: { path: 'dashboardToken', type: 'string' },
};

/** Command-line option → config path. */
const FLAGS: Record<string, string> = {
  agents: 'agents',
  agentsPerRound: 'agentsPerRound',
  rounds: 'rounds',
  seedsPerAgent: 'seedsPerAgent',
  seedMode: 'seedMode',
  poolSize: 'poolSize',
  transport: 'transport',
  natsUrl: 'natsUrl',
  partitioner: 'partitioner',
  alpha: 'alpha',
  shardsPerAgent: 'shardsPerAgent',
  minPerAgent: 'minPerAgent',
  batchSize: 'batchSize',
  epsilon: 'epsilon',
  distribution: 'distribution',
  rank: 'rank',
  vPeriod: 'vPeriod',
  lr: 'schedule.lr',
  schedule: 'schedule.kind',
  minLr: 'schedule.minLr',
  warmupSteps: 'schedule.warmupSteps',
  strategy: 'aggregation',
  clip: 'clip',
  momentum: 'momentum.beta',
  momentumWindow: 'momentum.window',
  lossGuard: 'lossGuard.threshold',
  plateauPatience: 'plateau.patience',
  plateauFactor: 'plateau.factor',
  ...DP_FLAGS,
  ...SECURE_AGGREGATION_FLAGS,
  ...RECORD_DP_FLAGS,
  quorum: 'quorum',
  deadlineMs: 'deadlineMs',
  maxAttempts: 'maxAttempts',
  dropout: 'faults.dropout',
  straggler: 'faults.straggler',
  crash: 'faults.crash',
  rejoinMs: 'faults.rejoinMs',
  byzantine: 'faults.byzantine',
  attack: 'faults.attack',
  seed: 'seed',
  replicas: 'replicas',
  worker: 'worker',
  evalEvery: 'evalEvery',
  out: 'out',
  dashboardListen: 'dashboardListen',
  dashboardToken: 'dashboardToken',
};

/** Resolves the configuration from defaults, --config, MEZO_SIMULATE_* and flags; the report goes to ./mezo-simulate by default. */
export function resolveSimulateConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): SimulateOptions & { out: string } {
  const config = resolveConfig(simulateOptionsSchema, { env, envBindings: ENV, ...layeredFlags(flags, FLAGS) });
  return { ...config, out: config.out ?? DEFAULT_SIMULATE_OUT };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

function bytes(n: number): string {
  if (n < 1024) return `${n.toFixed(0)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

/** The report as the lines `mezo simulate` prints. */
export function formatSimulationReport(report: SimulationReport, files: { log: string; report: string; runRecord?: string }): string {
  const o = report.options;
  const d = report.data;
  const split =
    d.partitioner === 'dirichlet' ? `dirichlet α=${o.alpha}` : d.partitioner === 'label-shards' ? `label shards ×${o.shardsPerAgent}` : 'iid';
  const f = o.faults;
  const faultList = [
    f.dropout > 0 ? `dropout ${f.dropout}` : '',
    f.crash > 0 ? `crash ${f.crash} (rejoin ${f.rejoinMs} ms, ${report.faults.crashes} crashes)` : '',
    f.straggler !== 'none' ? `stragglers ${f.straggler}` : '',
    report.faults.byzantineAgents > 0 ? `${report.faults.byzantineAgents} byzantine (${f.attack})` : '',
  ].filter(Boolean);
  const r = report.results;
  const rejections = Object.entries(r.rejections).map(([reason, n]) => `${reason} ${n}`).join(', ');
  const t = report.traffic;
  const rows: Array<[string, string]> = [
    ['fleet', `${o.agents} agents (${split}, ${d.examplesPerAgent.median} digits each), ${o.agentsPerRound} per round, ${report.transport} transport`],
    [
      'rounds',
      `${report.rounds} (${report.failure ?? `${report.failedAttempts} failed attempts`}), ${report.roundsPerSecond.toFixed(1)} rounds/s; ` +
        // Two spans, named: run.json's wallSeconds starts once the fleet is connected, the command's before set-up.
        `${report.runSeconds.toFixed(1)} s from the fleet connected to the end (run.json wallSeconds), ${report.wallSeconds.toFixed(1)} s with set-up`,
    ],
    ['accuracy', `${pct(report.accuracyBefore)} → ${pct(report.accuracyAfter)} (shifted test, ${report.accuracyAfter >= report.accuracyBefore ? '+' : ''}${((report.accuracyAfter - report.accuracyBefore) * 100).toFixed(2)} points)`],
    ['loss', `${report.lossBefore.toFixed(4)} → ${report.lossAfter.toFixed(4)}`],
    ['bytes per agent', `up ${bytes(t.meanBytesUp)}, down ${bytes(t.meanBytesDown)} (per round: ${bytes(t.bytesUpPerAgentRound)} up, ${bytes(t.bytesDownPerAgentRound)} down)`],
    ['results', `${r.accepted} accepted, ${r.late} late, ${r.dropped} dropped, ${r.rejected} rejected${rejections ? ` (${rejections})` : ''}`],
    ['faults', faultList.length > 0 ? faultList.join('; ') : 'none'],
    ...(report.privacy
      ? [
          [
            'privacy',
            formatPrivacy(report.privacy, o.dp!.clip),
          ] as [string, string],
        ]
      : []),
    ...(report.recordPrivacy ? [['record privacy', formatRecordPrivacy(report.recordPrivacy)] as [string, string]] : []),
    ['update log', `${files.log} (${report.logVersion} entries, head ${report.logHeadHash.slice(0, 16)}…)`],
    ['weights', `sha256 ${report.weightsSha256.slice(0, 16)}…`],
    ['report', files.runRecord ? `${files.report}, ${files.runRecord} (mezo report renders it)` : files.report],
  ];
  return rows.map(([key, value]) => `${key.padEnd(16)} ${value}\n`).join('');
}

export function registerSimulateCommand(program: Command): void {
  addSecureAggregationOptions(addRecordDpOptions(addDpOptions(program.command('simulate'))))
    .description('simulate a federated fine-tune on this machine: the default model, N virtual agents, the coordinator')
    .option('--config <file>', 'JSON config file (defaults < file < MEZO_SIMULATE_* env < flags)')
    .option('--agents <n>', 'virtual agents (default 100)', number)
    .option('--agents-per-round <m>', 'agents asked per round (default 10)', number)
    .option('--rounds <n>', 'rounds (default 300)', number)
    .option('--seeds-per-agent <k>', 'seeds each asked agent evaluates (default 8 with distinct seeds, else 1)', number)
    .option('--seed-mode <mode>', 'shared | distinct | pool (default distinct)')
    .option('--pool-size <K>', 'seeds in the pool (seed mode pool)', number)
    .option('--transport <kind>', 'memory | grpc | nats (default memory)')
    .option('--nats-url <url>', 'NATS server for --transport nats (default: start nats-server from PATH)')
    .option('--partitioner <kind>', 'iid | dirichlet | label-shards (default dirichlet)')
    .option('--alpha <x>', 'Dirichlet concentration (default 0.5; smaller is more skewed)', number)
    .option('--shards-per-agent <n>', 'label shards per agent', number)
    .option('--min-per-agent <n>', 'digits per agent at least (the pool repeats when needed)', number)
    .option('--batch-size <n>', 'examples per task (default 32)', number)
    .option('--epsilon <x>', 'perturbation size ε', number)
    .option('--distribution <kind>', 'gaussian | rademacher | lowrank (LOZO: rank-r noise on weight matrices)')
    .option('--rank <r>', 'lowrank: the rank r of each matrix perturbation, 1–64', number)
    .option('--v-period <n>', 'rounds that share V (the seeds\' high word); 1 draws every seed afresh', number)
    .option('--lr <x>', 'peak learning rate (default 8e-3 at 80 distinct seeds per round; docs/learning.md)', number)
    .option('--schedule <kind>', 'constant | linear | cosine (default cosine, decaying over the run)')
    .option('--min-lr <x>', 'final learning rate of linear/cosine', number)
    .option('--warmup-steps <n>', 'linear warm-up rounds', number)
    .option('--strategy <kind>', 'aggregation: mean | trimmed-mean | median (default mean)')
    .option('--clip <x>', 'clip each |g| to this bound before aggregating', number)
    .option('--momentum <beta>', 'seed-space momentum: re-apply the last rounds\' directions decayed by beta^age (default off)', number)
    .option('--momentum-window <W>', 'rounds of history momentum re-applies (default 4)', number)
    .option('--loss-guard <sds>', 'undo the previous round when a round\'s loss jumps this many running sds above its mean (default off)', number)
    .option('--plateau-patience <n>', 'cut the rate when the smoothed training loss stalls this many rounds (default off)', number)
    .option('--plateau-factor <x>', 'what each plateau cut multiplies the rate by (default 0.5)', number)
    .option('--quorum <fraction>', 'fraction of the asked agents that closes a round (default 1; 0.5 with dropout or crashes)', number)
    .option('--deadline-ms <n>', 'round deadline', number)
    .option('--max-attempts <n>', 'attempts per round before the run fails', number)
    .option('--dropout <p>', 'probability an answer is lost', number)
    .option('--straggler <spec>', 'answer latency: none | exp:MEAN_MS | lognormal:MEDIAN_MS:SIGMA | uniform:MIN_MS:MAX_MS')
    .option('--crash <p>', 'probability an agent crashes on a task and rejoins later', number)
    .option('--rejoin-ms <n>', 'how long a crashed agent stays away', number)
    .option('--byzantine <fraction>', 'fraction of agents that forge their answers', number)
    .option('--attack <kind>', 'sign-flip | scale | random (default sign-flip)')
    .option('--seed <n>', 'seed of the data split, device shifts, sampling, seeds and faults', number)
    .option('--replicas <n>', 'weight replicas the virtual agents share (default 1)', number)
    .option('--no-worker', 'run the replicas on the main thread')
    .option('--eval-every <n>', 'evaluate the shifted-test accuracy every n rounds', number)
    .option('--out <dir>', `output directory: update.log, report.json, run.json (default ${DEFAULT_SIMULATE_OUT})`)
    .option('--dashboard-listen <host:port>', 'serve the live dashboard and /metrics here while the run lasts (port 0: any)')
    .option('--dashboard-token <token>', 'token the dashboard asks for (default: none)')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveSimulateConfig({ ...flags, worker: flags.worker === false ? false : undefined });
      const { runSimulation } = await import('../simulation/simulate.js');
      // A simulation's output is its progress and report; per-round and per-agent info lines would bury them.
      if (process.env.MEZO_LOG_LEVEL === undefined) (await import('../shared/logger.js')).logger.level = 'warn';
      const { createProgress } = await import('../shared/progress.js');
      const progress = flags.json ? undefined : createProgress({ label: 'simulate', total: config.rounds });
      let accuracy = '';
      let latest: { done: number; fields: Record<string, string> } | undefined;
      const show = (done: number, fields: Record<string, string>): void => {
        latest = { done, fields };
        progress?.update(done, { ...fields, ...(accuracy ? { 'target acc': accuracy } : {}) });
      };
      let report: SimulationReport;
      try {
        report = await runSimulation(config, {
          onReady: ({ dashboardUrl }) => {
            if (dashboardUrl) process.stderr.write(`dashboard: ${dashboardUrl}/\n`);
          },
          onEvaluation: (_, acc) => {
            accuracy = pct(acc);
            // The final evaluation comes after the last round: redraw, so the bar ends on the summary's figure.
            if (latest) show(latest.done, latest.fields);
          },
          onProgress: (p) => show(p.roundsDone, { loss: p.trainLoss.toFixed(4), answering: `${p.answered}/${p.asked}` }),
        });
      } finally {
        progress?.stop();
      }
      mkdirSync(config.out, { recursive: true });
      const files = { log: join(config.out, 'update.log'), report: join(config.out, 'report.json'), ...(report.runRecord ? { runRecord: join(config.out, 'run.json') } : {}) };
      writeFileSync(files.report, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatSimulationReport(report, files));
    });
}
