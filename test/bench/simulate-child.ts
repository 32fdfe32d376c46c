/** One `mezo simulate` configuration in its own process, so its peak RSS is its own (see simulate-bench.ts). */
import { runSimulation, type SimulateOptionsInput } from '../../simulation/simulate.js';
import { reportToParent } from './harness.js';

export interface SimulateChildReport {
  wallSeconds: number;
  roundsPerSecond: number;
  rounds: number;
  accuracyBefore: number;
  accuracyAfter: number;
  logHeadHash: string;
  bytesUpPerAgentRound: number;
  bytesDownPerAgentRound: number;
  agentsAtHead: number;
  agents: number;
  failure?: string;
  peakRssMiB: number;
}

reportToParent<SimulateOptionsInput, SimulateChildReport>(async (options) => {
  const report = await runSimulation(options);
  return {
    wallSeconds: report.wallSeconds,
    roundsPerSecond: report.roundsPerSecond,
    rounds: report.rounds,
    accuracyBefore: report.accuracyBefore,
    accuracyAfter: report.accuracyAfter,
    logHeadHash: report.logHeadHash,
    bytesUpPerAgentRound: report.traffic.bytesUpPerAgentRound,
    bytesDownPerAgentRound: report.traffic.bytesDownPerAgentRound,
    agentsAtHead: report.audit.agentsAtHead,
    agents: report.audit.agents,
    ...(report.failure ? { failure: report.failure } : {}),
    // resourceUsage().maxRSS is in KiB.
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
});
