/**
 * `mezo simulate` benchmark: the full default simulation (no flags: 100 agents, 10 per round × 32 seeds, 300
 * rounds, in memory) — its wall time and accuracy gain — then the same run over gRPC and NATS (same seed, so the same log
 * head), and fleets of 1,000 and 10,000 virtual agents with their peak RSS. Each configuration runs in its own
 * process.
 */
import { fileURLToPath } from 'node:url';
import type { SimulateOptionsInput } from '../../simulation/simulate.js';
import { natsServerPath } from '../../simulation/local-nats-server.js';
import { forkBenchChild, hostInfo, type SuiteResult } from './harness.js';
import type { SimulateChildReport } from './simulate-child.js';

const CHILD = fileURLToPath(new URL('./simulate-child.js', import.meta.url));

interface Configuration {
  name: string;
  options: SimulateOptionsInput;
}

export async function benchSimulate(): Promise<SuiteResult> {
  const configurations: Configuration[] = [
    { name: 'default (100 agents, memory)', options: {} },
    { name: 'default over gRPC', options: { transport: 'grpc' } },
    ...(natsServerPath() ? [{ name: 'default over NATS', options: { transport: 'nats' as const } }] : []),
    { name: '1,000 agents, 10/round, 300 rounds', options: { agents: 1000 } },
    { name: '10,000 agents, 10/round, 50 rounds', options: { agents: 10_000, rounds: 50 } },
  ];
  const runs: Array<Configuration & SimulateChildReport> = [];
  for (const configuration of configurations) {
    process.stderr.write(`simulate bench: ${configuration.name}\n`);
    runs.push({ ...configuration, ...(await forkBenchChild<SimulateOptionsInput, SimulateChildReport>(CHILD, configuration.options)) });
  }
  const base = runs[0]!;
  const gain = (base.accuracyAfter - base.accuracyBefore) * 100;
  return {
    suite: 'simulate',
    date: new Date().toISOString(),
    host: hostInfo(),
    runs,
    targets: [
      { target: 'default simulation wall time (s)', value: base.wallSeconds },
      { target: 'default simulation accuracy gain (points)', value: gain },
    ],
    table: runs.map((r) => ({
      configuration: r.name,
      'wall s': r.wallSeconds,
      'rounds/s': r.roundsPerSecond,
      'acc before %': r.accuracyBefore * 100,
      'acc after %': r.accuracyAfter * 100,
      'B down/agent/round': r.bytesDownPerAgentRound,
      'B up/agent/round': r.bytesUpPerAgentRound,
      'agents at head': `${r.agentsAtHead}/${r.agents}`,
      'peak RSS MiB': r.peakRssMiB,
      'log head': r.logHeadHash.slice(0, 12),
      ...(r.failure ? { failure: r.failure } : {}),
    })),
  };
}

// `node dist/test/bench/simulate-bench.js` runs the suite on its own.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { report } = await import('./harness.js');
  report(await benchSimulate());
}
