/**
 * `mezo simulate` end to end: the real coordinator, virtual agents running the deployment's Agent code over
 * real transports, the default model on its distorted digits.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replay, UpdateLog } from '../../shared/log/index.js';
import { loadDefaultModel, paddingRanges, slabSha256 } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import { runSimulation, type SimulateOptionsInput } from '../../simulation/simulate.js';
import { registerSimulateCommand } from '../../cli/simulate-command.js';
import { natsServerPath } from '../helpers/nats-server.js';
import { runCli } from '../helpers/run-cli.js';

// The TypeScript noise kernel is ~40× slower than the native one; long runs use fewer rounds there.
const slow = noise.kind === 'js';
// Fewer seeds per agent than the default 32: these tests are about the fleet, not about how far it learns, and a
// round of 8 agents must fit its 1 s deadline with the TypeScript kernel too.
const small: SimulateOptionsInput = { agents: 40, agentsPerRound: 8, seedsPerAgent: slow ? 1 : 2, rounds: slow ? 12 : 30, batchSize: 16 };
// The transport comparisons run low-rank noise with lazy V: the LOWRANK enum value and the rank cross the wire in
// the join answer, and every replica (coordinator, agents, audit) must derive the same layout from the model.
// A generous deadline: a round retried on a loaded machine would draw fresh seeds and make the logs differ.
// The TypeScript kernel's low-rank noise is slower than its Gaussian: fewer rounds there.
const lowRank: SimulateOptionsInput = { ...small, distribution: 'lowrank', rank: 2, vPeriod: 5, deadlineMs: 20_000, rounds: slow ? 6 : 30 };

describe(`mezo simulate (${noise.kind} noise)`, () => {
  it('trains the default model across virtual agents, and the log replayed from the base gives the coordinator’s weights', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mezo-sim-'));
    const report = await runSimulation({ ...small, out });
    expect(report.rounds).toBe(small.rounds);
    expect(report.failure).toBeUndefined();
    expect(report.results).toMatchObject({ accepted: small.rounds! * 8, rejected: 0, dropped: 0, divergent: 0 });
    expect(report.accuracyAfter).toBeGreaterThan(report.accuracyBefore);
    expect(report.audit).toEqual({ replicas: 1, replicasMatching: 1, agents: 40, agentsAtHead: 40 });
    // Every asked agent sent a result (a few dozen bytes) per task and received every update.
    expect(report.traffic.bytesUpPerAgentRound).toBeGreaterThan(0);
    expect(report.traffic.bytesDownPerAgentRound).toBeGreaterThan(report.traffic.bytesUpPerAgentRound);

    const prepared = await loadDefaultModel();
    // The default distribution (Rademacher since the forward-estimator defaults; docs/learning.md).
    const distribution = report.options.distribution;
    expect(distribution).toBe('rademacher');
    const header = { jobId: 'simulate', baseSha256: prepared.manifest.slabSha256, distribution, decayRanges: [] };
    const log = await UpdateLog.open(join(out, 'update.log'), header);
    const slab = prepared.slab.slice();
    replay(noise, slab, log.entries(), distribution, { padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length) });
    await log.close();
    expect(log.version).toBe(small.rounds);
    expect(slabSha256(slab)).toBe(report.weightsSha256);
  });

  it('gives the same update log on the in-memory and gRPC transports for the same seed (low-rank noise)', async () => {
    const memory = await runSimulation({ ...lowRank, transport: 'memory', seed: 5 });
    const grpc = await runSimulation({ ...lowRank, transport: 'grpc', seed: 5 });
    const otherSeed = await runSimulation({ ...lowRank, transport: 'memory', seed: 6 });
    expect(grpc.failure).toBeUndefined();
    expect(grpc.audit).toEqual({ replicas: 1, replicasMatching: 1, agents: 40, agentsAtHead: 40 });
    expect(grpc.logHeadHash).toBe(memory.logHeadHash);
    expect(grpc.weightsSha256).toBe(memory.weightsSha256);
    expect(otherSeed.logHeadHash).not.toBe(memory.logHeadHash);
    // Protobuf on the wire is smaller than the in-memory transport's JSON estimate, and both are counted.
    expect(grpc.traffic.bytesDownPerAgentRound).toBeGreaterThan(0);
  }, 300_000);

  it.skipIf(!natsServerPath())('gives the same update log over NATS (a local nats-server) as in memory (low-rank noise)', async () => {
    const memory = await runSimulation({ ...lowRank, transport: 'memory', seed: 5 });
    const nats = await runSimulation({ ...lowRank, transport: 'nats', seed: 5 });
    expect(nats.failure).toBeUndefined();
    expect(nats.logHeadHash).toBe(memory.logHeadHash);
    expect(nats.weightsSha256).toBe(memory.weightsSha256);
    expect(nats.audit.agentsAtHead).toBe(40);
    // The same protobuf bytes as gRPC, counted per agent.
    expect(nats.traffic.bytesUpPerAgentRound).toBeGreaterThan(0);
    expect(nats.traffic.bytesDownPerAgentRound).toBeGreaterThan(nats.traffic.bytesUpPerAgentRound);
  });

  // Deadlines in these runs only close the rounds that lost too many answers: generous ones keep a loaded
  // machine's slow answers from failing every attempt of a round.
  it('closes every round with 30 % of the answers lost', async () => {
    const report = await runSimulation({ ...small, rounds: slow ? 12 : 40, deadlineMs: 2000, faults: { dropout: 0.3 } });
    expect(report.failure).toBeUndefined();
    expect(report.rounds).toBe(slow ? 12 : 40);
    expect(report.faults.timingDependent).toBe(true);
    // Half of the 8 asked close a round; the answers that came after it closed were dropped as late.
    expect(report.results.accepted).toBeGreaterThanOrEqual(report.rounds * 4);
    expect(report.results.rejected).toBe(0);
  });

  it('survives crashes: agents that rejoin catch up by the log and end on the coordinator’s chain', async () => {
    const report = await runSimulation({ ...small, rounds: slow ? 12 : 40, deadlineMs: 2000, faults: { crash: 0.1, rejoinMs: 20 } });
    expect(report.failure).toBeUndefined();
    expect(report.faults.crashes).toBeGreaterThan(0);
    expect(report.audit.replicasMatching).toBe(1);
    expect(report.audit.agentsAtHead).toBe(report.audit.agents);
  });

  it('counts stragglers’ answers that miss the round as late', async () => {
    const report = await runSimulation({ ...small, rounds: slow ? 8 : 20, quorum: 0.5, deadlineMs: 2000, faults: { straggler: 'uniform:0:60' } });
    expect(report.failure).toBeUndefined();
    expect(report.results.late).toBeGreaterThan(0);
  });

  // 300 rounds twice: minutes with the TypeScript kernel, whose bits match the native one (test/unit/noise).
  it.skipIf(slow)('keeps accuracy within 2 points of the clean run with 20 % byzantine agents under median aggregation', async () => {
    // Gaussian noise, as when the 2-point margin was set (the default is Rademacher now; with it seed 1's
    // attacked run lands 2.2 points off: the margin is one seed's, not a bound).
    const robust: SimulateOptionsInput = { aggregation: 'median', distribution: 'gaussian' };
    const clean = await runSimulation({ ...robust, seed: 1 });
    const attacked = await runSimulation({ ...robust, seed: 1, faults: { byzantine: 0.2, attack: 'sign-flip' } });
    expect(clean.options.seedMode).toBe('shared');
    expect(attacked.faults.byzantineAgents).toBe(20);
    expect(clean.accuracyAfter - clean.accuracyBefore).toBeGreaterThan(0.1);
    expect(Math.abs(attacked.accuracyAfter - clean.accuracyAfter)).toBeLessThanOrEqual(0.02);
    // The same attack under the plain mean wrecks the model: the defence is what holds it.
    const undefended = await runSimulation({ aggregation: 'mean', seedMode: 'shared', distribution: 'gaussian', schedule: { lr: 4e-4 }, seed: 1, rounds: 150, faults: { byzantine: 0.2 } });
    expect(undefended.accuracyAfter).toBeLessThan(clean.accuracyAfter - 0.1);
  }, 600_000);

  it('rejects bad options with the field named, before anything starts', async () => {
    await expect(runSimulation({ agents: 10, agentsPerRound: 20 })).rejects.toThrow(/agentsPerRound: must not exceed agents/);
    await expect(runSimulation({ faults: { straggler: 'gamma:3' } })).rejects.toThrow(/faults.straggler: .*expected none, exp:MEAN_MS/);
    await expect(runSimulation({ faults: { dropout: 1 } })).rejects.toThrow(/faults.dropout/);
  });
});

describe('mezo simulate (command)', () => {
  it('runs with flags, prints the report and writes it with the update log', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mezo-sim-cli-'));
    const run = await runCli([registerSimulateCommand], 'simulate', '--agents', '20', '--agents-per-round', '4', '--seeds-per-agent', '1', '--rounds', '6', '--out', out, '--seed', '3');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^fleet\s+20 agents \(dirichlet α=0.5/m);
    expect(run.stdout).toMatch(/^rounds\s+6 \(0 failed attempts\)/m);
    expect(run.stdout).toMatch(/^accuracy\s+64\.87% → /m);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { rounds: number; options: { seed: number } };
    expect(report).toMatchObject({ rounds: 6, options: { seed: 3 } });
    expect(existsSync(join(out, 'update.log'))).toBe(true);
    // The progress ends on the figure the summary gives (the final evaluation comes after the last round)...
    const after = /^accuracy\s+[\d.]+% → ([\d.]+%)/m.exec(run.stdout)![1]!;
    const progress = run.stderr.split('\n').filter((line) => line.startsWith('simulate '));
    expect(progress.at(-1)).toMatch(new RegExp(`^simulate 6/6 .*target acc ${after.replace('.', '\\.')}`));
    // ... and the summary's times say which span run.json's wallSeconds is.
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { summary: { wallSeconds: number } };
    expect(run.stdout).toContain(`${record.summary.wallSeconds.toFixed(1)} s from the fleet connected to the end (run.json wallSeconds)`);
  });

  it('names the flag that is wrong', async () => {
    const run = await runCli([registerSimulateCommand], 'simulate', '--transport', 'carrier-pigeon');
    expect(`${run.stderr}${run.error?.message ?? ''}`).toMatch(/transport.*--transport/);
  });
});
