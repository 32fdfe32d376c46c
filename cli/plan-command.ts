/**
 * `mezo plan`: predicted peak memory of fine-tuning a model at a batch size with MeZO and with backprop (SGD,
 * momentum, Adam; with and without activation checkpointing), and — for a zoo family and a budget — the largest
 * member each method can fine-tune. The memory model is described in docs/plan.md.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { MemoryEstimate } from '../shared/plan/index.js';

export interface PlanCommandOptions {
  batch: number;
  budget?: number;
  familyParam?: string;
  size?: number;
  loss?: 'cross-entropy' | 'mse' | 'none';
  dims?: Record<string, number>;
  /** MeZO with low-rank noise of this rank (its scratch counted). */
  rank?: number;
  json?: boolean;
}

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

async function byteSize(value: string): Promise<number> {
  const { parseByteSize } = await import('../shared/plan/index.js');
  return parseByteSize(value);
}

function dimList(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const out = { ...previous };
  for (const part of value.split(',')) {
    const match = /^\s*([^=\s]+)\s*=\s*([0-9]+)\s*$/.exec(part);
    if (!match || Number(match[2]) < 1) throw new InvalidArgumentError('must be name=size pairs, e.g. seq=128');
    out[match[1]!] = Number(match[2]);
  }
  return out;
}

/** Resolves the target and computes the plan; throws PlanError / ModelPreparationError naming the problem. */
export async function runPlan(target: string, options: PlanCommandOptions): Promise<Record<string, unknown>> {
  const plan = await import('../shared/plan/index.js');
  const shape = { batch: options.batch, ...(options.dims ? { dims: options.dims } : {}) };
  const method = (e: { method: string; checkpointing: boolean }): string => `${e.method}${e.checkpointing ? '+ckpt' : ''}`;
  const ratios = (estimates: Array<{ method: string; checkpointing: boolean; total: number }>): Record<string, number> => {
    const mezo = estimates.find((e) => e.method === 'mezo')!.total;
    return Object.fromEntries(estimates.filter((e) => e.method !== 'mezo').map((e) => [method(e), mezo / e.total]));
  };

  if (target.startsWith('zoo:')) {
    const family = plan.zooFamily(target.slice(4));
    const param = plan.checkFamilyParam(family, options.familyParam);
    const result: Record<string, unknown> = { target, family: family.name, param, batch: options.batch };
    if (options.budget !== undefined) {
      const fits = plan.familyFits(family, param, { batch: options.batch, budgetBytes: options.budget, ...(options.rank === undefined ? {} : { rank: options.rank }) });
      const mezo = fits[0]!;
      result.budgetBytes = options.budget;
      result.fits = fits;
      // How much larger a model MeZO can fine-tune than each backprop variant, in parameters.
      result.parameterRatios = Object.fromEntries(
        fits.slice(1).map((f) => [method(f), mezo.parameters !== null && f.parameters ? mezo.parameters / f.parameters : null]),
      );
      return result;
    }
    const size = options.size ?? family.defaultSize(param);
    const facts = plan.analyzeGraph(plan.familyGraph(family, param, size, options.loss), shape);
    const estimates = plan.estimateAll(facts, options.rank === undefined ? {} : { rank: options.rank });
    return { ...result, size, model: family.describe(param, size), facts, estimates, mezoOverBackprop: ratios(estimates) };
  }
  if (options.size !== undefined || options.familyParam !== undefined) {
    throw new plan.PlanError('--size and --family-param apply to zoo:<family> targets only');
  }
  const path = resolve(target);
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new plan.PlanError(`${target}: no such file or directory (give a prepared-model directory, a .onnx file, zoo:mlp, zoo:cnn or zoo:transformer)`);
  }
  let graph;
  if (info.isDirectory()) {
    const { MANIFEST_FILE, MODEL_FILE, parseManifest } = await import('../shared/model/index.js');
    let manifestText: string;
    let model: Uint8Array;
    try {
      manifestText = await readFile(join(path, MANIFEST_FILE), 'utf8');
      model = await readFile(join(path, MODEL_FILE));
    } catch (err) {
      throw new plan.PlanError(`${target} is not a prepared-model directory (it needs ${MANIFEST_FILE} and ${MODEL_FILE}): ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(manifestText);
    } catch (err) {
      throw new plan.PlanError(`${join(target, MANIFEST_FILE)} is not JSON: ${(err as Error).message}`);
    }
    if (options.loss !== undefined) throw new plan.PlanError('--loss applies to plain .onnx models; a prepared model already has its loss head');
    graph = plan.planGraphFromPrepared({ model, manifest: parseManifest(parsed, join(target, MANIFEST_FILE)) }, path);
  } else {
    graph = plan.planGraphFromModel(await readFile(path), { source: path, loss: options.loss ?? 'cross-entropy' });
  }
  const facts = plan.analyzeGraph(graph, shape);
  const estimates = plan.estimateAll(facts, options.rank === undefined ? {} : { rank: options.rank });
  const result: Record<string, unknown> = { target: path, batch: options.batch, facts, estimates, mezoOverBackprop: ratios(estimates) };
  if (options.budget !== undefined) {
    result.budgetBytes = options.budget;
    result.fitsBudget = Object.fromEntries(estimates.map((e) => [method(e), e.total <= options.budget!]));
  }
  return result;
}

/** An estimate as the planner's JSON result carries it. */
type EstimateRow = Omit<MemoryEstimate, 'method'> & { method: string };

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The human rendering of runPlan's result. */
export async function formatPlan(result: Record<string, unknown>): Promise<string> {
  const { formatBytes } = await import('../shared/plan/index.js');
  const label = (e: { method: string; checkpointing: boolean }): string =>
    e.method === 'mezo' ? 'MeZO' : `${e.method === 'sgd' ? 'SGD' : e.method === 'momentum' ? 'SGD+momentum' : 'Adam'}${e.checkpointing ? ' +ckpt' : ''}`;
  const lines: string[] = [];
  const budget = result.budgetBytes as number | undefined;
  if (Array.isArray(result.fits)) {
    const fits = result.fits as Array<{ method: string; checkpointing: boolean; size: number | null; atLimit: boolean; model: string | null; parameters: number | null; estimate: EstimateRow | null }>;
    lines.push(`largest ${result.family} by ${result.param} within ${formatBytes(budget!)} at batch ${result.batch}:`);
    lines.push(
      table(
        ['method', String(result.param), 'model', 'parameters', 'peak'],
        fits.map((f) => [label(f), f.size === null ? 'none fits' : `${f.size}${f.atLimit ? ' (family max)' : ''}`, f.model ?? '-', f.parameters === null ? '-' : f.parameters.toLocaleString('en-US'), f.estimate ? formatBytes(f.estimate.total) : '-']),
      ),
    );
    const ratios = result.parameterRatios as Record<string, number | null>;
    const adam = ratios.adam;
    if (adam !== null && adam !== undefined) lines.push(`MeZO fits ${adam.toFixed(2)}x the parameters of Adam (${(ratios.sgd ?? 0).toFixed(2)}x of plain SGD)`);
    return `${lines.join('\n')}\n`;
  }
  const facts = result.facts as { parameters: number; layers: number; forwardPeakBytes: number; storedActivationBytes: number };
  lines.push(`${(result.model as string | undefined) ?? result.target} at batch ${result.batch}: ${facts.parameters.toLocaleString('en-US')} parameters, ${facts.layers} weight layers`);
  lines.push(`forward activation peak ${formatBytes(facts.forwardPeakBytes)}; activations kept for backward ${formatBytes(facts.storedActivationBytes)}`);
  const estimates = result.estimates as EstimateRow[];
  const fitsBudget = result.fitsBudget as Record<string, boolean> | undefined;
  const header = ['method', 'weights', 'gradients', 'optimizer', 'activations', 'runtime', 'peak', 'vs MeZO'];
  if (fitsBudget) header.push(`fits ${formatBytes(budget!)}`);
  const mezo = estimates[0]!.total;
  if (estimates[0]!.noiseScratch !== undefined) lines.push(`MeZO's optimizer column: low-rank noise scratch (${formatBytes(estimates[0]!.noiseScratch)}); no optimizer state`);
  lines.push(
    table(
      header,
      estimates.map((e) => {
        const row = [label(e), formatBytes(e.weights), formatBytes(e.gradients), formatBytes(e.optimizerState), formatBytes(e.activations), formatBytes(e.baseline), formatBytes(e.total), `${(e.total / mezo).toFixed(2)}x`];
        if (fitsBudget) row.push(fitsBudget[`${e.method}${e.checkpointing ? '+ckpt' : ''}`] ? 'yes' : 'no');
        return row;
      }),
    ),
  );
  return `${lines.join('\n')}\n`;
}

/** `mezo plan`: memory planning for MeZO versus backprop. */
export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('predict peak memory of fine-tuning with MeZO vs backprop, or find the largest zoo model that fits a budget')
    .argument('<model>', 'a prepared-model directory, a .onnx file, zoo:mlp, zoo:cnn or zoo:transformer')
    .requiredOption('--batch <n>', 'batch size', positiveInt)
    .option('--budget <size>', 'memory budget, e.g. 512MiB or 2GiB (zoo families: search the largest model that fits)')
    .option('--family-param <name>', 'zoo families: the size parameter to vary (mlp: width, layers; cnn: channels, hidden; transformer: dim, layers)')
    .option('--size <n>', 'zoo families without --budget: the member to plan (mlp width 1024, cnn channels 8, transformer dim 256 by default)', positiveInt)
    .option('--loss <kind>', 'plain .onnx models and zoo families: loss head to plan with (cross-entropy, mse, none)')
    .option('--rank <r>', 'MeZO with low-rank noise (--distribution lowrank) of this rank: count its scratch', positiveInt)
    .option('--dims <list>', 'sizes of symbolic input dimensions other than the batch, e.g. seq=128', dimList)
    .option('--json', 'print JSON instead of a table')
    .action(async (target: string, raw: Omit<PlanCommandOptions, 'budget'> & { budget?: string }) => {
      const { PlanError } = await import('../shared/plan/index.js');
      const { ModelPreparationError } = await import('../shared/model/index.js');
      let text: string;
      try {
        if (raw.loss !== undefined && !['cross-entropy', 'mse', 'none'].includes(raw.loss)) {
          throw new PlanError(`--loss must be one of cross-entropy, mse, none, got ${JSON.stringify(raw.loss)}`);
        }
        const options: PlanCommandOptions = { ...raw, budget: raw.budget === undefined ? undefined : await byteSize(raw.budget) };
        if (options.budget === undefined) delete options.budget;
        const result = await runPlan(target, options);
        text = raw.json ? `${JSON.stringify(result, null, 2)}\n` : await formatPlan(result);
      } catch (err) {
        if (!(err instanceof PlanError || err instanceof ModelPreparationError || err instanceof RangeError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(text);
    });
}
