// A coordinator and three agents embedded in one Node program (docs/embedding.md): they talk over the in-memory
// transport (or gRPC on loopback with --grpc), fine-tune the embedded default model for a few rounds with a custom Strategy, and the program checks
// that the coordinator's weights and every agent's weights equal base + replay of the update log. The coordinator
// and the agents are started with the library entry points createCoordinator and startAgent, which install no
// signal handlers and write nothing of their own.
//
//   node examples/embed.mjs [--grpc] [log-file]   (default log: a file in a fresh temporary folder)
//
// Everything is imported through the package's public entry points, as code that depends on mezo-fleet would.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCoordinator } from 'mezo-fleet/coordinator';
import { createAgentBackend, startAgent } from 'mezo-fleet/agent';
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
// The round loop sizes its rounds (how many agents it waits for, the quorum) from the strategy object: a
// MezoStrategy's agentsPerRound.
const strategy = new DampedStrategy({ agentsPerRound: AGENTS, seedsPerAgent: 2, schedule: { lr: 1e-3 }, seed: 11 }, 0.5);
const coordinator = createCoordinator({
  log,
  baseSlab: prepared.slab,
  padding,
  engine: noise,
  transport,
  strategy,
  options: { jobId: 'embedded', rounds: ROUNDS, batchSize: 32, deadlineMs: 60_000 },
});
// Listens, then runs the rounds in the background; the first round starts once AGENTS agents are connected.
const address = await coordinator.start();
const healthWhileServing = coordinator.health.status;

// The agents: each with its own share of the default task's device data, its model run in process.
const agents = Array.from({ length: AGENTS }, (_, k) => startAgent({
  agentId: `agent-${k}`,
  transport: grpc ? new GrpcTransport({ address }) : transport,
  prepared,
  createBackend: (distribution) => createAgentBackend(prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 }),
  data: task.agents[k],
  dataSeed: k,
  logPublicKey: signer.publicKey,
  onJobEnd: 'leave', // waitForEnd() resolves once the job's last round is applied
}));

// The job ends after ROUNDS rounds; then every agent has applied the last update and left.
const report = await coordinator.waitForEnd();
await Promise.all(agents.map((agent) => agent.waitForEnd()));
// The handle's Prometheus metrics saw every round (serving them over HTTP is the program's choice).
const metricsText = await coordinator.metrics.registry.metrics();
const roundsMetric = Number(/^mezo_rounds_total (\d+)$/m.exec(metricsText)?.[1]);

// Base + log, replayed from the file the coordinator wrote, must be the weights everyone holds, bit for bit.
const replica = prepared.slab.slice();
replay(noise, replica, log.entries(), log.distribution, { decayRanges: header.decayRanges, padding });
const replayed = slabSha256(replica);
const coordinatorSha = coordinator.coordinator.weightsSha256();
const agentShas = await Promise.all(agents.map((agent) => agent.backend.sha256()));

await Promise.all(agents.map((agent) => agent.close()));
await coordinator.close(); // closes the listener and the log
const health = { serving: healthWhileServing, closed: coordinator.health.status };

const result = { logPath, publicKey: signer.publicKey, roundsRun: report.roundsRun, version: report.version, headHash: report.headHash, roundsMetric, health, replayed, coordinator: coordinatorSha, agents: agentShas };
console.log(JSON.stringify(result));
if (report.roundsRun !== ROUNDS || roundsMetric !== ROUNDS || coordinatorSha !== replayed || agentShas.some((sha) => sha !== replayed)) {
  console.error('embedded run: weights differ from base + log replay');
  process.exitCode = 1;
}
