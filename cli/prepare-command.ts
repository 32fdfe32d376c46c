import { InvalidArgumentError, type Command } from 'commander';

/** What `mezo prepare` did, for printing (and for tests). */
export interface PrepareSummary {
  out: string;
  tensors: number;
  parameters: number;
  slabBytes: number;
  frozenInitializers: number;
  loss: string;
  lossOutput: string | null;
  opset: number;
  warnings: string[];
}

export interface PrepareCommandOptions {
  out: string;
  trainable?: string[];
  /** PATTERN=FACTOR items: reparametrise those trainable tensors as factor · W (scaleTrainable). */
  scale?: string[];
  loss?: string;
  output?: string;
  overwrite?: boolean;
}

/**
 * Prepares `modelPath` and writes the result to `options.out`. Preparation happens entirely in memory before
 * anything is written, and the write itself is all-or-nothing, so a failure leaves no output directory.
 */
export async function runPrepare(modelPath: string, options: PrepareCommandOptions): Promise<PrepareSummary> {
  const { prepareModel, scaleTrainable, writePrepared, decodeModel, ModelPreparationError } = await import('../shared/model/index.js');
  const { tensorScales } = await import('./option-parsing.js');
  if (!options.out) throw new ModelPreparationError('--out <dir> is required');
  const unscaled = prepareModel(modelPath, {
    ...(options.trainable && options.trainable.length > 0 ? { trainable: options.trainable } : {}),
    ...(options.loss !== undefined ? { loss: options.loss as 'cross-entropy' | 'mse' | 'none' } : {}),
    ...(options.output !== undefined ? { output: options.output } : {}),
  });
  const scales = (options.scale ?? []).flatMap((item) => {
    try {
      return tensorScales(item);
    } catch (err) {
      throw new ModelPreparationError(`--scale: ${(err as Error).message}`);
    }
  });
  const prepared = scales.length > 0 ? scaleTrainable(unscaled, scales, '--scale') : unscaled;
  const out = await writePrepared(options.out, prepared, { overwrite: options.overwrite ?? false });
  const { manifest } = prepared;
  return {
    out,
    tensors: manifest.tensors.length,
    parameters: manifest.parameterCount,
    slabBytes: manifest.slabLength * 4,
    frozenInitializers: decodeModel(prepared.model).graph?.initializer?.length ?? 0,
    loss: manifest.loss,
    lossOutput: manifest.lossOutput,
    opset: manifest.opset,
    warnings: prepared.warnings,
  };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function lossKind(value: string): string {
  if (value !== 'cross-entropy' && value !== 'mse' && value !== 'none') {
    throw new InvalidArgumentError("must be 'cross-entropy', 'mse' or 'none'");
  }
  return value;
}

/** `mezo prepare`: makes an ONNX model trainable in place (weights as inputs backed by one slab, a loss head). */
export function registerPrepareCommand(program: Command): void {
  program
    .command('prepare')
    .description('prepare an ONNX model for in-place fine-tuning: trainable weights become slab-backed inputs, a loss head is appended')
    .argument('<model>', 'the ONNX model file (its external data files are read from the same directory)')
    .requiredOption('-o, --out <dir>', 'output directory for model.onnx, base.slab and manifest.json')
    .option(
      '-t, --trainable <pattern...>',
      'initializers to train: globs (* any run, ? one character, {a,b}) or /regex/ (default: every float32 initializer)',
    )
    .option(
      '--scale <pattern=factor...>',
      'reparametrise trainable tensors as factor·W (factor a power of two): zeroth-order steps on them are factor² as large',
    )
    .option('-l, --loss <kind>', 'loss head: cross-entropy, mse or none', lossKind, 'cross-entropy')
    .option('--output <name>', 'the graph output the loss reads (default: the first output)')
    .option('--overwrite', 'replace the files of an existing non-empty output directory')
    .option('--json', 'print a JSON summary instead of text')
    .action(async (model: string, options: PrepareCommandOptions & { json?: boolean }) => {
      const { ModelPreparationError } = await import('../shared/model/index.js');
      let summary: PrepareSummary;
      try {
        summary = await runPrepare(model, options);
      } catch (err) {
        // A bad model or option is the user's to fix: print the message alone (no stack, no usage text).
        if (!(err instanceof ModelPreparationError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      const head = summary.loss === 'none' ? 'no loss head' : `${summary.loss} loss on ${summary.lossOutput}`;
      process.stdout.write(
        `selected ${summary.tensors} tensors, ${summary.parameters.toLocaleString('en-US')} parameters, ${formatBytes(summary.slabBytes)} slab\n` +
          `kept ${summary.frozenInitializers} frozen initializers; ${head}; opset ${summary.opset}\n` +
          `wrote ${summary.out}\n`,
      );
    });
}
