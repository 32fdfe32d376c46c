/**
 * Faults injected into a simulated fleet, each drawn per virtual agent and per task from the run's seed, so a
 * run's faults are reproducible: dropout (the answer is lost), crash and rejoin (the agent disconnects and comes
 * back later as a fresh process that catches up by the log), stragglers (the answer leaves late) and byzantine
 * agents (the answer is forged). What a fault does to timing is not reproducible: a late answer may or may not
 * beat a deadline.
 */
import { z } from 'zod';
import { SeededRng, type Seed } from '../shared/data/index.js';
import type { EvaluationMiddleware } from '../edge-agent/evaluation.js';
import type { SeedEvaluation } from '../edge-agent/mezo-evaluator.js';

export const ATTACKS = ['sign-flip', 'scale', 'random'] as const;
export type Attack = (typeof ATTACKS)[number];

/** When a straggler's answer leaves after its evaluation: never late, or an extra delay from a distribution. */
export type LatencyModel =
  | { kind: 'none' }
  | { kind: 'exponential'; meanMs: number }
  | { kind: 'lognormal'; medianMs: number; sigma: number }
  | { kind: 'uniform'; minMs: number; maxMs: number };

const positive = (text: string | undefined): number => {
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? value : Number.NaN;
};

/**
 * Parses "none", "exp:MEAN_MS", "lognormal:MEDIAN_MS:SIGMA" or "uniform:MIN_MS:MAX_MS". Throws a RangeError
 * that says which form is expected.
 */
export function parseLatency(spec: string): LatencyModel {
  const [kind, a, b, ...rest] = spec.trim().split(':');
  const bad = (): never => {
    throw new RangeError(`straggler latency ${JSON.stringify(spec)}: expected none, exp:MEAN_MS, lognormal:MEDIAN_MS:SIGMA or uniform:MIN_MS:MAX_MS with positive numbers`);
  };
  if (rest.length > 0) bad();
  switch (kind) {
    case 'none':
      if (a !== undefined) bad();
      return { kind: 'none' };
    case 'exp': {
      const meanMs = positive(a);
      if (Number.isNaN(meanMs) || b !== undefined) bad();
      return { kind: 'exponential', meanMs };
    }
    case 'lognormal': {
      const medianMs = positive(a);
      const sigma = positive(b);
      if (Number.isNaN(medianMs) || Number.isNaN(sigma)) bad();
      return { kind: 'lognormal', medianMs, sigma };
    }
    case 'uniform': {
      const minMs = Number(a);
      const maxMs = positive(b);
      if (!(Number.isFinite(minMs) && minMs >= 0) || Number.isNaN(maxMs) || minMs > maxMs) bad();
      return { kind: 'uniform', minMs, maxMs };
    }
    default:
      return bad();
  }
}

export const faultOptionsSchema = z.strictObject({
  /** Probability that an agent's answer to a task is lost. */
  dropout: z.number().min(0).lt(1).default(0),
  /** Probability that an agent crashes on receiving a task (it disconnects and rejoins after rejoinMs). */
  crash: z.number().min(0).lt(1).default(0),
  rejoinMs: z.number().int().min(0).max(600_000).default(500),
  /** Extra delay before an answer leaves (parseLatency's forms); kept as text so options parse idempotently. */
  straggler: z
    .string()
    .default('none')
    .superRefine((spec, ctx) => {
      try {
        parseLatency(spec);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  /** Fraction of agents that forge their answers. */
  byzantine: z.number().min(0).lt(1).default(0),
  attack: z.enum(ATTACKS).default('sign-flip'),
});
export type FaultOptions = z.output<typeof faultOptionsSchema>;
export type FaultOptionsInput = z.input<typeof faultOptionsSchema>;

export interface TaskFault {
  crash: boolean;
  drop: boolean;
  delayMs: number;
}

export class FaultPlan {
  private readonly byzantine: Set<number>;
  readonly latency: LatencyModel;

  constructor(
    readonly options: FaultOptions,
    private readonly agents: number,
    private readonly seed: Seed,
  ) {
    // A fixed set of agents, drawn once: the same agents lie in every round, as compromised devices would.
    const order = new SeededRng(seed, 'simulate-byzantine').permutation(agents);
    this.byzantine = new Set(Array.from(order.subarray(0, Math.round(options.byzantine * agents))));
    this.latency = parseLatency(options.straggler);
  }

  /** True when the faults make a run's outcome depend on timing (its log hash may then differ between runs). */
  get timingDependent(): boolean {
    const o = this.options;
    return o.dropout > 0 || o.crash > 0 || this.latency.kind !== 'none';
  }

  isByzantine(agent: number): boolean {
    return this.byzantine.has(agent);
  }

  get byzantineCount(): number {
    return this.byzantine.size;
  }

  /** What happens to agent `agent`'s `task`-th task (counted from 0 per agent process). */
  taskFault(agent: number, task: number, incarnation: number): TaskFault {
    const rng = new SeededRng(this.seed, 'simulate-fault', agent, incarnation, task);
    const crash = rng.nextFloat() < this.options.crash;
    const drop = rng.nextFloat() < this.options.dropout;
    return { crash, drop, delayMs: this.delay(rng) };
  }

  private delay(rng: SeededRng): number {
    const model = this.latency;
    switch (model.kind) {
      case 'none':
        return 0;
      case 'exponential':
        return -model.meanMs * Math.log(1 - rng.nextFloat());
      case 'lognormal':
        return model.medianMs * Math.exp(model.sigma * rng.normal());
      case 'uniform':
        return model.minMs + (model.maxMs - model.minMs) * rng.nextFloat();
    }
  }
}

/**
 * A byzantine agent's forged answer. The losses are rewritten around their mean so that g = (L₊ − L₋)/2ε still
 * holds (an answer that fails that check is rejected outright and would test nothing): 'sign-flip' reverses and
 * amplifies g (×4), 'scale' amplifies it (×100), 'random' replaces it with noise 100 times its size.
 */
export function forgeEvaluations(evaluations: readonly SeedEvaluation[], attack: Attack, epsilon: number, rng: SeededRng): SeedEvaluation[] {
  return evaluations.map((e) => {
    const g = attack === 'sign-flip' ? -4 * e.g : attack === 'scale' ? 100 * e.g : 100 * (Math.abs(e.g) + 1e-3) * rng.normal();
    const mean = (e.lossPlus + e.lossMinus) / 2;
    const lossPlus = mean + g * epsilon;
    const lossMinus = mean - g * epsilon;
    return { seed: e.seed, lossPlus, lossMinus, g: (lossPlus - lossMinus) / (2 * epsilon), valid: true };
  });
}

/** A fault the simulation injected into a task: the agent logs it as a failed task and leaves it unanswered. */
export class SimulatedFaultError extends Error {
  override name = 'SimulatedFaultError';
}

/** Which virtual agent process a fault middleware serves. */
export interface AgentFaults {
  plan: FaultPlan;
  /** The agent's index in the fleet. */
  agent: number;
  /** How many times it has crashed and come back (faults are drawn per process). */
  incarnation: number;
  /** Its agent id, for the errors. */
  name: string;
  /** Draws a byzantine agent's random forgeries. */
  forger: SeededRng;
  /** Called when the agent crashes on a task: the simulation closes it and starts it again later. */
  crash: () => void;
}

/**
 * The plan's faults as an evaluation middleware (edge-agent/evaluation.ts) for one agent process: on its n-th
 * task it may crash before evaluating, and after evaluating it may forge the answer (byzantine), send it late
 * (straggler) or lose it (dropout: computed and lost on the way, as on a flaky link).
 */
export function faultMiddleware(faults: AgentFaults): EvaluationMiddleware {
  const { plan, agent, incarnation, name, forger } = faults;
  let tasks = 0;
  return async (context, next) => {
    const fault = plan.taskFault(agent, tasks++, incarnation);
    if (fault.crash) {
      faults.crash();
      throw new SimulatedFaultError(`${name} crashed (simulated)`);
    }
    let evaluations = await next(context);
    if (plan.isByzantine(agent)) evaluations = forgeEvaluations(evaluations, plan.options.attack, context.task.epsilon, forger);
    if (fault.delayMs > 0) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.drop) throw new SimulatedFaultError(`${name}: answer lost (simulated dropout)`);
    return evaluations;
  };
}
