/** Shared set-up for the federation tests: the default model and task, coordinators and agents on loopback. */
import { TransportError, type Transport } from '../../shared/transport/index.js';
import { Agent } from '../../edge-agent/agent.js';
import { createAgentBackend } from '../../edge-agent/agent-backend.js';
import type { MezoBackend } from '../../edge-agent/mezo-backend.js';
import { scoreDataset } from '../../edge-agent/dataset-evaluation.js';
import { InProcessBackend } from '../../edge-agent/mezo-backend.js';
import { Coordinator, type CoordinatorInit } from '../../coordinator/index.js';
import { UpdateLog } from '../../shared/log/index.js';
import { defaultTask, loadDefaultModel, paddingRanges, type DefaultTask, type PreparedModel } from '../../shared/model/index.js';
import { noise } from '../../shared/noise/index.js';
import type { LocalDataset } from '../../shared/data/index.js';

export interface Fixture {
  prepared: PreparedModel;
  task: DefaultTask;
}

let cached: Promise<Fixture> | undefined;

export function fixture(numAgents = 6): Promise<Fixture> {
  cached ??= (async () => ({ prepared: await loadDefaultModel(), task: defaultTask({ numAgents, seed: 7, perAgent: 300 }) }))();
  return cached;
}

export function logHeader(prepared: PreparedModel, jobId = 'fleet-test') {
  return { jobId, baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian' as const, decayRanges: [] };
}

/** The model's slab padding, which every replica keeps at zero (replay and the coordinator need it). */
export function paddingOf(prepared: PreparedModel): Array<[number, number]> {
  return paddingRanges(prepared.manifest.tensors, prepared.slab.length);
}

export async function startCoordinator(
  f: Fixture,
  transport: Transport,
  options: CoordinatorInit['options'],
  logPath?: string,
  extra: Partial<Pick<CoordinatorInit, 'snapshots' | 'strategy' | 'secureAggregation' | 'onRound'>> = {},
): Promise<Coordinator> {
  const header = logHeader(f.prepared, options.jobId ?? 'fleet-test');
  const log = logPath ? await UpdateLog.open(logPath, header) : UpdateLog.inMemory(header);
  const coordinator = new Coordinator({ log, baseSlab: f.prepared.slab, padding: paddingOf(f.prepared), engine: noise, transport, options: { jobId: 'fleet-test', ...options }, ...extra });
  await coordinator.listen();
  return coordinator;
}

export function makeAgent(
  f: Fixture,
  transport: Transport,
  index: number,
  wrap: (backend: MezoBackend) => MezoBackend = (b) => b,
  data: LocalDataset = f.task.agents[index]!,
): Agent {
  return new Agent({
    agentId: `agent-${index}`,
    transport,
    prepared: f.prepared,
    createBackend: async (distribution) => wrap(await createAgentBackend(f.prepared, distribution, { worker: false, engine: noise, intraOpThreads: 1 })),
    data,
    dataSeed: index,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 20, maxMs: 200 },
  });
}

/** Shifted-test accuracy of some weights. */
export async function accuracyOf(f: Fixture, slab: Float32Array): Promise<number> {
  const backend = await InProcessBackend.create(f.prepared, noise, { slab: slab.slice(), intraOpThreads: 1 });
  try {
    return (await scoreDataset(backend, f.task.shiftedTest, 500)).accuracy;
  } finally {
    await backend.close();
  }
}

/**
 * A wait gives up no sooner than this: waits are for progress, not speed, and on a loaded 2-core machine
 * (the whole suite, twice, in parallel) a healthy fleet can be many times slower than alone. Within the
 * 60 s test timeout, so the failure still names what was awaited.
 */
const UNTIL_FLOOR_MS = 30_000;

/** Polls `predicate` until it holds; throws naming `what` after max(timeoutMs, 30 s). */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + Math.max(timeoutMs, UNTIL_FLOOR_MS);
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The status code a transport call fails with ('OK' when it succeeds). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    return err.code;
  }
}
