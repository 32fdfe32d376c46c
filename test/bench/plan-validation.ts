/**
 * Memory-planner validation: predicted peak memory against measured peak RSS.
 *
 * MeZO: real MeZO training (InProcessBackend, restore 'subtract', one onnxruntime thread) in a child process per
 * run — the trainer benchmark's child, reused — across MLP widths at batch 64; target |error| ≤ 15 %.
 * Backprop: the same MLPs trained by PyTorch (test/bench/bp-baseline.py) with SGD, momentum and Adam, with and
 * without activation checkpointing; target |error| ≤ 20 %. Skipped when /usr/bin/python3 cannot import torch.
 * Every configuration runs `repeats` times; medians are reported. Both runtime baselines are re-measured on a
 * near-empty model and shown next to the planner's constants (the predictions use the constants).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prepareModel, writePrepared } from '../../shared/model/index.js';
import { buildMlp } from '../../shared/model/zoo/index.js';
import { analyzeGraph, estimateMemory, NODE_ORT_BASELINE, planGraphFromPrepared, PYTORCH_BASELINE, type Method } from '../../shared/plan/index.js';
import { forkBenchChild, hostInfo, type SuiteResult } from './harness.js';
import type { TrainerChildConfig, TrainerChildReport } from './trainer-child.js';

const CHILD = fileURLToPath(new URL('./trainer-child.js', import.meta.url));
const PYTHON = '/usr/bin/python3';
/** The peer script lives in the source tree (test/bench/), two levels above dist/test/bench/. */
const PEER_CANDIDATES = ['./bp-baseline.py', '../../../test/bench/bp-baseline.py'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
const run = promisify(execFile);
const MiB = 2 ** 20;

export interface PlanValidationOptions {
  widths?: number[];
  batch?: number;
  steps?: number;
  repeats?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function peerScript(): Promise<string | undefined> {
  const { existsSync } = await import('node:fs');
  return PEER_CANDIDATES.find((p) => existsSync(p));
}

/** Whether the system interpreter can import torch (the backprop half is skipped otherwise). */
export async function torchAvailable(): Promise<boolean> {
  try {
    await run(PYTHON, ['-c', 'import torch'], { timeout: 60_000 });
    return (await peerScript()) !== undefined;
  } catch {
    return false;
  }
}

async function torchPeakKiB(sizes: number[], batch: number, optimizer: string, checkpoint: boolean, steps: number): Promise<number> {
  const script = (await peerScript())!;
  const args = [script, '--sizes', sizes.join(','), '--batch', String(batch), '--optimizer', optimizer, '--steps', String(steps)];
  if (checkpoint) args.push('--checkpoint');
  const { stdout } = await run(PYTHON, args, { timeout: 300_000 });
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { maxRssKiB: number }).maxRssKiB;
}

export async function benchPlanValidation(options: PlanValidationOptions = {}): Promise<SuiteResult> {
  const widths = options.widths ?? [256, 512, 1024, 2048, 4096];
  const batch = options.batch ?? 64;
  const steps = options.steps ?? 50;
  const repeats = options.repeats ?? 3;
  const work = mkdtempSync(join(tmpdir(), 'mezo-bench-plan-'));
  const table: SuiteResult['table'] = [];
  const mezoRows: Array<Record<string, unknown>> = [];
  const backpropRows: Array<Record<string, unknown>> = [];
  const baselines: Record<string, unknown> = {};
  const withTorch = await torchAvailable();
  const mezoRun = async (preparedDir: string, sizes: number[], size: number): Promise<number> => {
    const config: TrainerChildConfig = {
      mode: 'train',
      preparedDir,
      batch: { features: 'float32', featureShape: [sizes[0]!], size, classes: sizes.at(-1)! },
      steps,
      distribution: 'gaussian',
      restore: 'subtract',
      intraOpThreads: 1,
      noiseThreads: 1,
      rssSamples: 5,
    };
    return (await forkBenchChild<TrainerChildConfig, TrainerChildReport>(CHILD, config)).maxRssKiB;
  };
  try {
    // Runtime baselines on a near-empty model (MLP 8-8-2, batch 1).
    const tiny = [8, 8, 2];
    const tinyDir = await writePrepared(join(work, 'tiny'), prepareModel(buildMlp({ sizes: tiny }).bytes));
    const nodeSamples: number[] = [];
    for (let r = 0; r < repeats; r++) nodeSamples.push(await mezoRun(tinyDir, tiny, 1));
    baselines.node = { constantMiB: NODE_ORT_BASELINE.bytes / MiB, measuredMiB: median(nodeSamples) / 1024, samplesKiB: nodeSamples };
    table.push({ run: 'baseline node+onnxruntime', prediction: 'constant', 'predicted MiB': NODE_ORT_BASELINE.bytes / MiB, 'measured MiB': median(nodeSamples) / 1024 });
    if (withTorch) {
      const samples: number[] = [];
      for (let r = 0; r < repeats; r++) samples.push(await torchPeakKiB(tiny, 1, 'sgd', false, steps));
      baselines.pytorch = { constantMiB: PYTORCH_BASELINE.bytes / MiB, measuredMiB: median(samples) / 1024, samplesKiB: samples };
      table.push({ run: 'baseline python+pytorch', prediction: 'constant', 'predicted MiB': PYTORCH_BASELINE.bytes / MiB, 'measured MiB': median(samples) / 1024 });
    }

    for (const width of widths) {
      const sizes = [784, width, width, 10];
      const prepared = prepareModel(buildMlp({ sizes }).bytes);
      const preparedDir = await writePrepared(join(work, `mlp-${width}`), prepared);
      const facts = analyzeGraph(planGraphFromPrepared(prepared), { batch });
      const predicted = estimateMemory(facts, 'mezo').total;
      const samples: number[] = [];
      for (let r = 0; r < repeats; r++) samples.push((await mezoRun(preparedDir, sizes, batch)) * 1024);
      const measured = median(samples);
      const error = (predicted - measured) / measured;
      mezoRows.push({ sizes, parameters: facts.parameters, predictedBytes: predicted, measuredBytes: measured, samplesBytes: samples, error });
      table.push({
        run: `MeZO mlp ${sizes.join('-')}`,
        prediction: 'node+ort',
        'predicted MiB': predicted / MiB,
        'measured MiB': measured / MiB,
        'error %': 100 * error,
        within: Math.abs(error) <= 0.15 ? 'yes (15%)' : 'NO (15%)',
      });
      if (!withTorch) continue;
      // The peer trains the same architecture in PyTorch, so its predictions use PyTorch's runtime baseline.
      for (const method of ['sgd', 'momentum', 'adam'] as const satisfies readonly Method[]) {
        for (const checkpointing of [false, true]) {
          const bpPredicted = estimateMemory(facts, method, { checkpointing, baseline: PYTORCH_BASELINE }).total;
          const bpSamples: number[] = [];
          for (let r = 0; r < repeats; r++) bpSamples.push((await torchPeakKiB(sizes, batch, method, checkpointing, Math.min(steps, 20))) * 1024);
          const bpMeasured = median(bpSamples);
          const bpError = (bpPredicted - bpMeasured) / bpMeasured;
          backpropRows.push({ sizes, method, checkpointing, predictedBytes: bpPredicted, measuredBytes: bpMeasured, samplesBytes: bpSamples, error: bpError });
          table.push({
            run: `${method}${checkpointing ? '+ckpt' : ''} mlp ${sizes.join('-')}`,
            prediction: 'pytorch',
            'predicted MiB': bpPredicted / MiB,
            'measured MiB': bpMeasured / MiB,
            'error %': 100 * bpError,
            within: Math.abs(bpError) <= 0.2 ? 'yes (20%)' : 'NO (20%)',
          });
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!withTorch) table.push({ run: 'backprop (PyTorch peer)', prediction: 'skipped', within: `${PYTHON} cannot import torch` });
  const worst = (rows: Array<Record<string, unknown>>): number => Math.max(0, ...rows.map((r) => Math.abs(r.error as number)));
  const targets = [
    { target: 'MeZO: max |predicted − measured| / measured', value: worst(mezoRows), goal: '<= 0.15', met: worst(mezoRows) <= 0.15 },
    ...(withTorch ? [{ target: 'backprop: max |predicted − measured| / measured', value: worst(backpropRows), goal: '<= 0.20', met: worst(backpropRows) <= 0.2 }] : []),
  ];
  for (const t of targets) table.push({ run: `TARGET ${t.target}`, prediction: t.goal, within: `${t.value.toFixed(3)} ${t.met ? 'met' : 'MISSED'}` });
  return {
    suite: 'plan-validation',
    date: new Date().toISOString(),
    host: hostInfo(),
    batch,
    steps,
    repeats,
    backprop: withTorch ? 'measured' : 'skipped',
    baselines,
    mezo: mezoRows,
    backpropRuns: backpropRows,
    targets,
    table,
  };
}
