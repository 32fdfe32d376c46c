/**
 * The evaluation middleware chain (edge-agent/evaluation.ts) on a real in-process backend: layers run
 * outermost first, a pass-through chain gives the backend's evaluations bit for bit, a layer can replace the
 * answer or throw, and a malformed list is refused with the entry named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMiddleware, composeEvaluation, evaluateOnBackend, type EvaluationContext, type EvaluationMiddleware } from '../../../edge-agent/evaluation.js';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { loadDefaultModel } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type Task } from '../../../shared/transport/index.js';
import { startAgent, type StartAgentOptions } from '../../../edge-agent/start-agent.js';

const size = 16;
const batch = {
  features: new Float32Array(size * 784).map((_, i) => ((i * 13) % 97) / 97),
  labels: BigInt64Array.from({ length: size }, (_, i) => BigInt((i * 7) % 10)),
  size,
  shape: [size, 784],
};
// The fields every task has; the optional ones (record-level DP, secure aggregation, ...) unset.
const task = { jobId: 'middleware-test', round: 0, attempt: 0, version: 0, seeds: [5n, 6n], epsilon: 1e-3, batchSize: size, deadlineMs: 1000 } as Task;

let backend: InProcessBackend;
let context: EvaluationContext;
beforeAll(async () => {
  backend = await InProcessBackend.create(await loadDefaultModel(), noise, { intraOpThreads: 1, checkpointInMemory: true });
  context = { agentId: 'agent-0', task, batch, backend, recordDp: undefined };
});
afterAll(async () => {
  await backend?.close();
});

describe(`evaluation middleware (${noise.kind} noise)`, () => {
  it('runs the layers outermost first around the backend, and a pass-through chain changes no bit', async () => {
    const bare = await evaluateOnBackend(context);
    const order: string[] = [];
    const layer = (name: string): EvaluationMiddleware => async (ctx, next) => {
      order.push(`${name} in`);
      const out = await next(ctx);
      order.push(`${name} out`);
      return out;
    };
    const chained = await composeEvaluation([layer('a'), layer('b')])(context);
    expect(order).toEqual(['a in', 'b in', 'b out', 'a out']);
    expect(chained).toEqual(bare);
    expect(chained.map((e) => e.seed)).toEqual(task.seeds);
    expect(chained.every((e) => e.valid && Number.isFinite(e.g))).toBe(true);
  });

  it('lets a layer replace the answer, change what inner layers see, or throw', async () => {
    const bare = await evaluateOnBackend(context);
    const negate: EvaluationMiddleware = async (ctx, next) =>
      (await next(ctx)).map((e) => ({ ...e, g: -e.g, lossPlus: e.lossMinus, lossMinus: e.lossPlus }));
    const negated = await composeEvaluation([negate])(context);
    expect(negated.map((e) => e.g)).toEqual(bare.map((e) => -e.g));

    // A layer may pass the inner layers another context: here only the first seed reaches the backend.
    const firstSeed: EvaluationMiddleware = (ctx, next) => next({ ...ctx, task: { ...ctx.task, seeds: ctx.task.seeds.slice(0, 1) } });
    const one = await composeEvaluation([firstSeed])(context);
    expect(one).toEqual(bare.slice(0, 1));

    let reached = false;
    const refuse: EvaluationMiddleware = async () => {
      throw new Error('refused by a layer');
    };
    const spy: EvaluationMiddleware = async (ctx, next) => {
      reached = true;
      return next(ctx);
    };
    await expect(composeEvaluation([refuse, spy])(context)).rejects.toThrow('refused by a layer');
    expect(reached).toBe(false);
  });

  it('refuses a middleware list that is not an array of functions, naming the entry', () => {
    expect(checkMiddleware(undefined, 'AgentInit.evaluation')).toEqual([]);
    expect(() => checkMiddleware('nope', 'AgentInit.evaluation')).toThrow(/AgentInit\.evaluation must be an array/);
    expect(() => checkMiddleware([async () => [], 3], 'AgentInit.evaluation')).toThrow(/AgentInit\.evaluation\[1\] must be a function.*number/);
    const options = { agentId: 'a', transport: new InMemoryTransport(), createBackend: async () => backend, prepared: {}, data: () => ({}) } as unknown as StartAgentOptions;
    expect(() => startAgent({ ...options, evaluation: [null] } as unknown as StartAgentOptions)).toThrow('startAgent: options.evaluation[0] must be a function');
  });
});
