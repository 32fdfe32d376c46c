/**
 * Privacy benchmark: what secure aggregation (coordinator/secure-aggregation.ts, edge-agent/secure-aggregation-
 * client.ts) costs against a plain round, at 10, 100 and 1,000 agents per round. Every message goes through the
 * protocol's protobuf codecs (what the in-memory and NATS transports move), so the bytes are the wire's; the
 * agents' model work is left out (it is the same in both). Times: the whole round in one thread (all agents and
 * the coordinator), the agents' share of it per agent, and the coordinator's (including its unmasking).
 * The 1,000-agent round uses the SecAgg+ neighbour graph (k = 40): the complete graph costs every agent a key
 * agreement and two Shamir evaluations per other agent, quadratic in the round.
 */
import { MezoStrategy } from '../../coordinator/strategy.js';
import { SecureRound, secureAggregationOptionsSchema } from '../../coordinator/secure-aggregation.js';
import { SecureAggregationClient } from '../../edge-agent/secure-aggregation-client.js';
import { SeededRng } from '../../shared/data/rng.js';
import { secureSpec } from '../../shared/privacy/secure-sum.js';
import { getCodecs } from '../../shared/transport/codecs.js';
import type { AgentMessage, CoordinatorMessage, Task } from '../../shared/transport/index.js';
import { hostInfo, type SuiteResult } from './harness.js';

export interface PrivacyBenchOptions {
  /** Rounds per configuration (the median is reported). */
  repetitions?: number;
  seeds?: number;
}

interface Cost {
  wallMs: number;
  /** CPU time of the process over the round (user + system): the work, less sensitive to a shared machine's load. */
  cpuMs: number;
  agentMsPerAgent: number;
  coordinatorMs: number;
  upBytesPerAgent: number;
  downBytesPerAgent: number;
  survivors: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function values(rng: SeededRng, seeds: number): { g: number[]; lossPlus: number[]; lossMinus: number[] } {
  const g = Array.from({ length: seeds }, () => (rng.nextFloat() - 0.5) * 20);
  return { g, lossPlus: g.map(() => 2 + rng.nextFloat()), lossMinus: g.map(() => 2 + rng.nextFloat()) };
}

function task(seeds: bigint[], spec?: Task['secureAggregation']): Task {
  return { jobId: 'bench', round: 1, attempt: 0, version: 1, seeds, epsilon: 1e-3, batchSize: 32, deadlineMs: 60_000, ...(spec ? { secureAggregation: spec } : {}) };
}

/** A plain round: tasks down, Results up, the strategy's weighted mean. */
function plainRound(n: number, seeds: number): Cost {
  const codecs = getCodecs();
  const rng = new SeededRng(1, 'bench-privacy-plain', n);
  const seedList = Array.from({ length: seeds }, (_, k) => BigInt(7 + k));
  const strategy = new MezoStrategy({ agentsPerRound: n, seedMode: 'shared', seedsPerAgent: seeds });
  let up = 0;
  let down = 0;
  let agentMs = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const results = [];
  for (let i = 0; i < n; i++) {
    const t = codecs.coordinatorMessage.decode(codecs.coordinatorMessage.encode({ kind: 'task', task: task(seedList) }));
    down += codecs.coordinatorMessage.encode({ kind: 'task', task: task(seedList) }).length;
    const a = performance.now();
    const v = values(rng, seeds);
    const message: AgentMessage = { kind: 'result', result: { round: 1, attempt: 0, seeds: t.kind === 'task' ? t.task.seeds : [], ...v, sampleCount: 32 } };
    agentMs += performance.now() - a;
    const bytes = codecs.agentMessage.encode(message);
    up += bytes.length;
    const decoded = codecs.agentMessage.decode(bytes);
    if (decoded.kind === 'result') results.push({ agentId: `agent-${i}`, ...decoded.result, lossPlus: decoded.result.lossPlus ?? [], lossMinus: decoded.result.lossMinus ?? [] });
  }
  strategy.aggregate({ round: 1, attempt: 0, version: 1 }, results);
  const wallMs = performance.now() - started;
  return { wallMs, cpuMs: cpuMsSince(cpu), agentMsPerAgent: agentMs / n, coordinatorMs: wallMs - agentMs, upBytesPerAgent: up / n, downBytesPerAgent: down / n, survivors: n };
}

/** A secure round, every message through the codecs; `drop` agents go silent after sharing their keys. */
async function secureRound(n: number, seeds: number, neighbours: number, drop: number): Promise<Cost> {
  const codecs = getCodecs();
  const rng = new SeededRng(1, 'bench-privacy-secure', n);
  const ids = Array.from({ length: n }, (_, i) => `agent-${String(i).padStart(4, '0')}`);
  const seedList = Array.from({ length: seeds }, (_, k) => BigInt(7 + k));
  const spec = secureSpec({ participants: n, weighted: true, batchSize: 32, maxAbsG: 1e6 });
  const t = task(seedList, spec);
  let up = 0;
  let down = 0;
  // Exclusive time inside agent code (the coordinator's handling nested in it is subtracted).
  let agentMs = 0;
  let nested = 0;
  const asAgent = (run: () => void): void => {
    const before = nested;
    const a = performance.now();
    run();
    const spent = performance.now() - a;
    agentMs += spent - (nested - before);
    nested = before + spent;
  };
  const clients = new Map<string, SecureAggregationClient>();
  const dropping = new Set(ids.slice(0, drop));
  const round: SecureRound = new SecureRound({
    jobId: 'bench',
    round: 1,
    attempt: 0,
    seeds: seedList,
    assigned: ids,
    quorum: Math.max(2, Math.ceil(n / 2)),
    spec,
    options: secureAggregationOptionsSchema.parse({ neighbours }),
    graphSeed: 1,
    phaseMs: 600_000,
    send: (to: string, message: CoordinatorMessage) => {
      const bytes = codecs.coordinatorMessage.encode(message);
      down += bytes.length;
      const decoded = codecs.coordinatorMessage.decode(bytes);
      asAgent(() => clients.get(to)!.handle(decoded));
      // A dropping agent disconnects once it holds its neighbours' shares, before its masked input.
      if (message.kind === 'secAggSharesIn' && dropping.has(to)) round.drop(to);
      return true;
    },
  });
  for (const id of ids) {
    clients.set(
      id,
      new SecureAggregationClient(id, (message) => {
        const bytes = codecs.agentMessage.encode(message);
        up += bytes.length;
        const decoded = codecs.agentMessage.decode(bytes);
        const a = performance.now();
        round.handle(id, decoded);
        nested += performance.now() - a;
      }),
    );
  }
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (const id of ids) {
    down += codecs.coordinatorMessage.encode({ kind: 'task', task: t }).length;
    asAgent(() => clients.get(id)!.begin(t));
  }
  ids.forEach((id, i) => {
    const v = values(rng, seeds);
    if (i >= drop) asAgent(() => clients.get(id)!.submit(t, v.g, v.lossPlus, v.lossMinus, 32));
  });
  const outcome = await round.run();
  const wallMs = performance.now() - started;
  const cpuMs = cpuMsSince(cpu);
  if (!outcome.ok) throw new Error(`bench: the secure round failed: ${outcome.reason}`);
  return { wallMs, cpuMs, agentMsPerAgent: agentMs / n, coordinatorMs: wallMs - agentMs, upBytesPerAgent: up / n, downBytesPerAgent: down / n, survivors: outcome.survivors.length };
}

export async function benchPrivacy(options: PrivacyBenchOptions = {}): Promise<SuiteResult> {
  const seeds = options.seeds ?? 1;
  const configs: Array<{ n: number; neighbours: number; drop: number; repetitions: number }> = [
    { n: 10, neighbours: 0, drop: 0, repetitions: options.repetitions ?? 5 },
    { n: 100, neighbours: 0, drop: 0, repetitions: options.repetitions ?? 3 },
    { n: 100, neighbours: 0, drop: 10, repetitions: options.repetitions ?? 3 },
    { n: 100, neighbours: 20, drop: 0, repetitions: options.repetitions ?? 3 },
    { n: 1000, neighbours: 40, drop: 0, repetitions: 1 },
    { n: 1000, neighbours: 40, drop: 100, repetitions: 1 },
  ];
  const rows: Array<Record<string, unknown>> = [];
  for (const c of configs) {
    const plain: Cost[] = [];
    const secure: Cost[] = [];
    for (let r = 0; r < c.repetitions; r++) {
      plain.push(plainRound(c.n, seeds));
      secure.push(await secureRound(c.n, seeds, c.neighbours, c.drop));
    }
    const pick = (list: Cost[], key: keyof Cost): number => median(list.map((x) => x[key]));
    rows.push({
      agents: c.n,
      graph: c.neighbours === 0 ? 'complete' : `k = ${c.neighbours}`,
      dropped: c.drop,
      plainMs: pick(plain, 'wallMs'),
      secureMs: pick(secure, 'wallMs'),
      plainCpuMs: pick(plain, 'cpuMs'),
      secureCpuMs: pick(secure, 'cpuMs'),
      secureAgentMsPerAgent: pick(secure, 'agentMsPerAgent'),
      secureCoordinatorMs: pick(secure, 'coordinatorMs'),
      plainUpBytes: pick(plain, 'upBytesPerAgent'),
      plainDownBytes: pick(plain, 'downBytesPerAgent'),
      secureUpBytes: pick(secure, 'upBytesPerAgent'),
      secureDownBytes: pick(secure, 'downBytesPerAgent'),
      repetitions: c.repetitions,
    });
  }
  const f = (x: unknown, d = 1): string => (typeof x === 'number' ? x.toFixed(d) : String(x));
  return {
    suite: 'privacy',
    date: new Date().toISOString(),
    host: hostInfo(),
    seedsPerAgent: seeds,
    rows,
    table: rows.map((r) => ({
      agents: r.agents as number,
      graph: r.graph as string,
      dropped: r.dropped as number,
      'plain round ms': f(r.plainMs, 2),
      'secure round ms': f(r.secureMs),
      'plain cpu ms': f(r.plainCpuMs, 2),
      'secure cpu ms': f(r.secureCpuMs),
      'agent ms (each)': f(r.secureAgentMsPerAgent, 2),
      'coordinator ms': f(r.secureCoordinatorMs),
      'plain B up/down': `${f(r.plainUpBytes, 0)}/${f(r.plainDownBytes, 0)}`,
      'secure B up/down': `${f(r.secureUpBytes, 0)}/${f(r.secureDownBytes, 0)}`,
    })),
  };
}
