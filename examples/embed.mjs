// A coordinator and three agents embedded in one Node program (docs/embedding.md): they talk over the in-memory
// transport (or gRPC on loopback with --grpc), fine-tune the embedded default model for a few rounds with a custom Strategy, and the program checks
// that the coordinator's weights and every agent's weights equal base + replay of the update log.
//
//   node examples/embed.mjs [--grpc] [log-file]   (default log: a file in a fresh temporary folder)
//
// Everything is imported through the package's public entry points, as code that depends on mezo-fleet would.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from 'mezo-fleet/coordinator';
import { Agent, createAgentBackend } from 'mezo-fleet/agent';
import { GrpcTransport, InMemoryTransport } from 'mezo-fleet/transport';
import { MezoStrategy } from 'mezo-fleet/strategy';
import { LogSigner, UpdateLog, replay } from 'mezo-fleet/log';
import { defaultTask, loadDefaultModel, paddingRanges, slabSha256 } from 'mezo-fleet/model';
import { noise } from 'mezo-fleet/noise';

const ROUNDS = 5;
const AGENTS = 3;

/**
 * A custom strategy: the default MezoStrategy's sampling, seeds and robust aggregation, with every coefficient
 * damped by a fixed factor before it is logged (a stand-in for any policy on the released update).
 */
class DampedStrategy extends MezoStrategy {
  constructor(config, factor) {
    super(config);
    this.factor = factor;
  }

  aggregate(context, results) {
    const update = super.aggregate(context, results);
    if (update === null) return null;
    const terms = update.terms.map(({ seed, coeff }) => ({ seed, coeff: coeff * this.factor }));
    console.log(`round ${context.round}: ${results.length} results, loss ${update.trainLoss.toFixed(4)}, ${terms.length} terms damped ×${this.factor}`);
    return { ...update, terms };
  }
}

const grpc = process.argv.includes('--grpc');
const logPath = process.argv.slice(2).find((a) => a !== '--grpc') ?? join(mkdtempSync(join(tmpdir(), 'mezo-embed-')), 'update.log');
const prepared = await loadDefaultModel();
const task = defaultTask({ numAgents: AGENTS, seed: 7, perAgent: 200 });
const padding = paddingRanges(prepared.manifest.tensors, prepared.slab.length);
const header = { jobId: 'embedded', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian', decayRanges: [] };

// The coordinator: a signed, durable log, and its transport. In memory, one transport object serves both sides
// (no sockets); over gRPC the coordinator binds an ephemeral loopback port and each agent dials it.
const signer = LogSigner.generate();
const log = await UpdateLog.open(logPath, header, { signer });
const transport = grpc ? new GrpcTransport({ address: '127.0.0.1:0' }) : new InMemoryTransport();
// The round loop sizes its rounds (quorum, waiting for agents) from options.strategy, so the custom strategy is
// built from the same configuration.
const strategyConfig = { agentsPerRound: AGENTS, seedsPerAgent: 2, schedule: { lr: 1e-3 }, seed: 11 };
const strategy = new DampedStrategy(strategyConfig, 0.5);
const coordinator = new Coordinator({
  log,
  baseSlab: prepared.slab,
  padding,
  engine: noise,
  transport,
  strategy,
  options: { jobId: 'embedded', rounds: ROUNDS, batchSize: 32, deadlineMs: 60_000, strategy: strategyConfig },
});
await coordinator.listen();

// The agents: each with its own share of the default task's device data, its model run in process.
const agents = Array.from({ length: AGENTS }, (_, k) => new Agent({
  agentId: `agent-${k}`,
  transport: grpc ? new GrpcTransport({ address: coordinator.address }) : transport,
  prepared,
  createBackend: (distribution) => createAgentBackend(prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
  data: task.agents[k],
  dataSeed: k,
  logPublicKey: signer.publicKey,
  onJobEnd: 'leave', // run() resolves once the job's last round is applied
}));
const running = agents.map((agent) => agent.run());

// The first round starts when all three agents are connected (agentsPerRound), and the job ends after ROUNDS.
const report = await coordinator.run();
await Promise.all(running);

// Base + log, replayed from the file the coordinator wrote, must be the weights everyone holds, bit for bit.
const replica = prepared.slab.slice();
replay(noise, replica, log.entries(), log.distribution, { decayRanges: header.decayRanges, padding });
const replayed = slabSha256(replica);
const coordinatorSha = coordinator.weightsSha256();
const agentShas = await Promise.all(agents.map((agent) => agent.backend.sha256()));

await Promise.all(agents.map((agent) => agent.close()));
await coordinator.close();
await log.close();

const result = { logPath, publicKey: signer.publicKey, roundsRun: report.roundsRun, version: report.version, headHash: report.headHash, replayed, coordinator: coordinatorSha, agents: agentShas };
console.log(JSON.stringify(result));
if (report.roundsRun !== ROUNDS || coordinatorSha !== replayed || agentShas.some((sha) => sha !== replayed)) {
  console.error('embedded run: weights differ from base + log replay');
  process.exitCode = 1;
}
