/**
 * One benchmark configuration in its own process (RSS is per process, so each configuration gets a fresh one).
 * Forked by model-forward.ts with a JSON config as argv[2]; reports its timings and peak RSS over IPC.
 */
import * as ort from 'onnxruntime-node';
import { createTrainableSession, loadPrepared } from '../../shared/model/index.js';
import { reportToParent } from './harness.js';

export interface ChildConfig {
  /** 'initializers': the original model file; 'inputs': a prepared directory (weights fed from the slab). */
  weightsAs: 'initializers' | 'inputs';
  path: string;
  input: { name: string; type: 'float32' | 'int64'; dims: number[] };
  warmup: number;
  runs: number;
  intraOpThreads?: number;
}

export interface ChildReport {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Peak RSS of the process before the model was loaded, in KiB. */
  baselineMaxRssKiB: number;
  /** Peak RSS of the process after the timed runs, in KiB. */
  maxRssKiB: number;
}

function batchTensor(input: ChildConfig['input']): ort.Tensor {
  const count = input.dims.reduce((a, b) => a * b, 1);
  if (input.type === 'int64') return new ort.Tensor('int64', BigInt64Array.from({ length: count }, (_, i) => BigInt((i * 7919) % 997)), input.dims);
  return new ort.Tensor('float32', Float32Array.from({ length: count }, (_, i) => Math.sin(i) * 0.5), input.dims);
}

async function main(config: ChildConfig): Promise<ChildReport> {
  const baselineMaxRssKiB = process.resourceUsage().maxRSS;
  const feeds = { [config.input.name]: batchTensor(config.input) };
  const sessionOptions = {
    graphOptimizationLevel: 'all' as const,
    executionMode: 'sequential' as const,
    ...(config.intraOpThreads !== undefined ? { intraOpNumThreads: config.intraOpThreads } : {}),
  };
  let run: () => Promise<unknown>;
  if (config.weightsAs === 'initializers') {
    const session = await ort.InferenceSession.create(config.path, sessionOptions);
    run = () => session.run(feeds);
  } else {
    const session = await createTrainableSession(await loadPrepared(config.path), {
      ...(config.intraOpThreads !== undefined ? { intraOpThreads: config.intraOpThreads } : {}),
    });
    run = () => session.runOutputs(feeds);
  }
  for (let i = 0; i < config.warmup; i++) await run();
  const samples: number[] = [];
  for (let i = 0; i < config.runs; i++) {
    const started = process.hrtime.bigint();
    await run();
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return {
    medianMs: samples[Math.floor(samples.length / 2)]!,
    minMs: samples[0]!,
    maxMs: samples[samples.length - 1]!,
    baselineMaxRssKiB,
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}

reportToParent(main);
