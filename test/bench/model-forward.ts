/**
 * Forward-pass cost of feeding weights as inputs (what in-place fine-tuning needs) versus keeping them as
 * initializers (what onnxruntime can pre-pack): median forward time and peak RSS, for the MLP 784-1024-1024-10
 * at batch 64 and the tiny transformer. Each configuration runs in a child process forked from the compiled
 * sibling model-forward-child.js, because peak RSS is per process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareModel, writePrepared } from '../../shared/model/index.js';
import { buildMlp, buildTransformer, type ZooModel } from '../../shared/model/zoo/index.js';
import type { ChildConfig, ChildReport } from './model-forward-child.js';
import { forkBenchChild, hostInfo, type SuiteResult } from './harness.js';

export interface ModelForwardOptions {
  runs?: number;
  warmup?: number;
  batch?: number;
  /** onnxruntime intra-op threads (default: onnxruntime's own choice). */
  intraOpThreads?: number;
}

const CHILD = fileURLToPath(new URL('./model-forward-child.js', import.meta.url));

function runChild(config: ChildConfig): Promise<ChildReport> {
  return forkBenchChild<ChildConfig, ChildReport>(CHILD, config);
}

export async function benchModelForward(options: ModelForwardOptions = {}): Promise<SuiteResult> {
  const runs = options.runs ?? 21;
  const warmup = options.warmup ?? 3;
  const batch = options.batch ?? 64;
  const models: Array<{ name: string; zoo: ZooModel }> = [
    { name: 'mlp 784-1024-1024-10', zoo: buildMlp({ sizes: [784, 1024, 1024, 10], seed: 1 }) },
    { name: 'transformer v1000 d64 h4 l2 s32', zoo: buildTransformer({ vocab: 1000, dim: 64, heads: 4, layers: 2, seq: 32, classes: 2, seed: 1 }) },
  ];
  const work = mkdtempSync(join(tmpdir(), 'mezo-bench-model-'));
  const table: SuiteResult['table'] = [];
  const results: Array<Record<string, unknown>> = [];
  try {
    for (const [index, { name, zoo }] of models.entries()) {
      const original = join(work, `model-${index}.onnx`);
      writeFileSync(original, zoo.bytes);
      // Loss 'none' keeps the logits output, so both configurations compute exactly the same forward pass.
      const preparedDir = await writePrepared(join(work, `prepared-${index}`), prepareModel(zoo.bytes, { loss: 'none' }));
      const input = {
        name: zoo.input.name,
        type: zoo.input.elemType,
        dims: zoo.input.shape.map((d) => (typeof d === 'number' ? d : batch)),
      };
      const reports: Partial<Record<ChildConfig['weightsAs'], ChildReport>> = {};
      for (const weightsAs of ['initializers', 'inputs'] as const) {
        const report = await runChild({
          weightsAs,
          path: weightsAs === 'inputs' ? preparedDir : original,
          input,
          warmup,
          runs,
          ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
        });
        reports[weightsAs] = report;
        const ratio = weightsAs === 'inputs' ? report.medianMs / reports.initializers!.medianMs : 1;
        results.push({ model: name, weightsAs, batch, parameters: zoo.parameterCount, timeVsInitializers: ratio, ...report });
        table.push({
          model: name,
          weights: weightsAs,
          batch,
          'median ms': report.medianMs,
          'min ms': report.minMs,
          'time vs initializers': ratio,
          'peak RSS MiB': report.maxRssKiB / 1024,
          'RSS over baseline MiB': (report.maxRssKiB - report.baselineMaxRssKiB) / 1024,
        });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return {
    suite: 'model-forward',
    date: new Date().toISOString(),
    host: hostInfo(),
    runs,
    warmup,
    intraOpThreads: options.intraOpThreads ?? 'onnxruntime default',
    results,
    table,
  };
}
