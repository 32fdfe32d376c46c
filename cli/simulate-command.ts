/**
 * `mezo simulate`: a whole federated job on this machine with no configuration — the default model, its
 * distorted digits split across N non-IID virtual agents, the coordinator, a progress bar — then a report
 * (text, and JSON in --out). Flags vary what users vary; the same flags and seed give the same update log.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { simulateOptionsSchema, type SimulateOptions, type SimulationReport } from '../simulation/simulate.js';
import { dpOptionSpecs, formatPrivacy, recordDpOptionSpecs } from './dp-options.js';
import { formatRecordPrivacy } from '../shared/privacy/record-dp.js';
import { configFlag, defineCommandOptions } from './command-options.js';
import { patternList, tensorScales } from './option-parsing.js';
import { secureAggregationOptionSpecs } from './secure-aggregation-options.js';

export const DEFAULT_SIMULATE_OUT = 'mezo-simulate';

/**
 * Every flag of `mezo simulate`, in --help order: its config key and help (cli/command-options.ts derives the
 * flag's spelling, its MEZO_SIMULATE_* variable and its parser from these and the schema).
 */
export const simulateOptions = defineCommandOptions(simulateOptionsSchema, 'MEZO_SIMULATE', {
  ...dpOptionSpecs,
  ...recordDpOptionSpecs,
  ...secureAggregationOptionSpecs,
  config: configFlag('MEZO_SIMULATE'),
  agents: { key: 'agents', help: 'virtual agents (default 100)' },
  agentsPerRound: { key: 'agentsPerRound', arg: '<m>', help: 'agents asked per round (default 10)' },
  rounds: { key: 'rounds', help: 'rounds (default 300)' },
  seedsPerAgent: { key: 'seedsPerAgent', arg: '<k>', help: 'seeds each asked agent evaluates (default 32 with distinct seeds, else 1)' },
  seedMode: { key: 'seedMode', arg: '<mode>', help: 'shared | distinct | pool (default distinct)' },
  poolSize: { key: 'poolSize', arg: '<K>', help: 'seeds in the pool (seed mode pool)' },
  transport: { key: 'transport', arg: '<kind>', help: 'memory | grpc | nats (default memory)' },
  natsUrl: { key: 'natsUrl', arg: '<url>', help: 'NATS server for --transport nats (default: start nats-server from PATH)' },
  partitioner: { key: 'partitioner', arg: '<kind>', help: 'iid | dirichlet | label-shards (default dirichlet)' },
  alpha: { key: 'alpha', arg: '<x>', help: 'Dirichlet concentration (default 0.5; smaller is more skewed)' },
  shardsPerAgent: { key: 'shardsPerAgent', help: 'label shards per agent' },
  minPerAgent: { key: 'minPerAgent', help: 'digits per agent at least (the pool repeats when needed)' },
  batchSize: { key: 'batchSize', help: 'examples per task (default 32)' },
  epsilon: { key: 'epsilon', arg: '<x>', help: 'perturbation size ε' },
  distribution: { key: 'distribution', arg: '<kind>', help: 'gaussian | rademacher | lowrank (LOZO: rank-r noise on weight matrices); default rademacher' },
  estimator: { key: 'estimator', arg: '<kind>', help: "central | forward: two forward passes per seed, or one centred on the task's mean (default forward with 2 or more seeds per agent; docs/learning.md)" },
  rank: { key: 'rank', arg: '<r>', help: 'lowrank: the rank r of each matrix perturbation, 1–64' },
  trainable: { key: 'trainable', arg: '<patterns>', parse: patternList, help: "the default model's tensors to train, comma-separated globs or /regex/ (default: all; e.g. 'fc0.*')" },
  tensorScale: { key: 'tensorScales', arg: '<pattern=s,...>', parse: tensorScales, help: 'reparametrise tensors as s·W (s a power of two): their zeroth-order steps are s² as large (default: none)' },
  vPeriod: { key: 'vPeriod', help: "rounds that share V (the seeds' high word); 1 draws every seed afresh" },
  lr: { key: 'schedule.lr', arg: '<x>', help: 'peak learning rate (default 1.6e-2 at 320 distinct seeds per round, × (300/rounds)^(3/4) past 300 rounds; docs/learning.md)' },
  schedule: { key: 'schedule.kind', arg: '<kind>', help: 'constant | linear | cosine (default cosine, decaying over the run)' },
  minLr: { key: 'schedule.minLr', arg: '<x>', help: 'final learning rate of linear/cosine' },
  warmupSteps: { key: 'schedule.warmupSteps', help: 'linear warm-up rounds' },
  strategy: { key: 'aggregation', arg: '<kind>', help: 'aggregation: mean | trimmed-mean | median (default mean)' },
  clip: { key: 'clip', arg: '<x>', help: 'clip each |g| to this bound before aggregating' },
  momentum: { key: 'momentum.beta', arg: '<beta>', help: "seed-space momentum: re-apply the last rounds' directions decayed by beta^age (default off)" },
  momentumWindow: { key: 'momentum.window', arg: '<W>', help: 'rounds of history momentum re-applies (default 4)' },
  lossGuard: { key: 'lossGuard.threshold', arg: '<sds>', help: "undo the previous round when a round's loss jumps this many running sds above its mean (default off)" },
  plateauPatience: { key: 'plateau.patience', help: 'cut the rate when the smoothed training loss stalls this many rounds (default off)' },
  plateauFactor: { key: 'plateau.factor', arg: '<x>', help: 'what each plateau cut multiplies the rate by (default 0.5)' },
  quorum: { key: 'quorum', arg: '<fraction>', help: 'fraction of the asked agents that closes a round (default 1; 0.5 with dropout or crashes)' },
  deadlineMs: { key: 'deadlineMs', help: 'round deadline' },
  maxAttempts: { key: 'maxAttempts', help: 'attempts per round before the run fails' },
  dropout: { key: 'faults.dropout', arg: '<p>', help: 'probability an answer is lost' },
  straggler: { key: 'faults.straggler', arg: '<spec>', help: 'answer latency: none | exp:MEAN_MS | lognormal:MEDIAN_MS:SIGMA | uniform:MIN_MS:MAX_MS' },
  crash: { key: 'faults.crash', arg: '<p>', help: 'probability an agent crashes on a task and rejoins later' },
  rejoinMs: { key: 'faults.rejoinMs', help: 'how long a crashed agent stays away' },
  byzantine: { key: 'faults.byzantine', arg: '<fraction>', help: 'fraction of agents that forge their answers' },
  attack: { key: 'faults.attack', arg: '<kind>', help: 'sign-flip | scale | random (default sign-flip)' },
  seed: { key: 'seed', help: 'seed of the data split, device shifts, sampling, seeds and faults' },
  replicas: { key: 'replicas', help: 'weight replicas the virtual agents share (default 1)' },
  worker: { key: 'worker', negate: true, help: 'run the replicas on the main thread' },
  evalEvery: { key: 'evalEvery', help: 'evaluate the shifted-test accuracy every n rounds' },
  out: { key: 'out', arg: '<dir>', help: `output directory: update.log, report.json, run.json (default ${DEFAULT_SIMULATE_OUT})` },
  dashboardListen: { key: 'dashboardListen', arg: '<host:port>', help: 'serve the live dashboard and /metrics here while the run lasts (port 0: any)' },
  dashboardToken: { key: 'dashboardToken', arg: '<token>', help: 'token the dashboard asks for (default: none)' },
  json: { help: 'print the report as JSON on stdout' },
});

/** Resolves the configuration from defaults, --config, MEZO_SIMULATE_* and flags; the report goes to ./mezo-simulate by default. */
export function resolveSimulateConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): SimulateOptions & { out: string } {
  const config = simulateOptions.resolve(flags, env);
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
  simulateOptions
    .register(program.command('simulate'))
    .description('simulate a federated fine-tune on this machine: the default model, N virtual agents, the coordinator')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveSimulateConfig(flags);
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
