/**
 * `mezo export`: bakes a job's trained weights — the prepared base plus the update log up to a version — into a
 * plain ONNX model without the loss head, which runs like the original model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { patternList, tensorScales } from './option-parsing.js';

function version(value: string): number {
  const parsed = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError('must be a non-negative integer');
  return parsed;
}

export interface ExportFlags {
  log: string;
  out: string;
  model?: string;
  /** The job's --trainable: the model is narrowed the same way before the log is replayed onto it. */
  trainable?: string[];
  /** The job's --tensor-scale. */
  tensorScale?: Array<{ pattern: string; factor: number }>;
  logVersion?: number;
  logPublicKey?: string;
  json?: boolean;
}

export async function runExport(flags: ExportFlags): Promise<void> {
  const { loadPrepared, loadDefaultModel, narrowTrainable, scaleTrainable } = await import('../shared/model/index.js');
  const { noise } = await import('../shared/noise/index.js');
  const { exportModel } = await import('../coordinator/export-model.js');
  const { LogSigner, parseLogPublicKey } = await import('../shared/log/index.js');
  const loaded = flags.model ? await loadPrepared(flags.model) : await loadDefaultModel();
  // A job that trained a transformed model (mezo simulate --trainable / --tensor-scale) logged against that base.
  const narrowed = flags.trainable ? narrowTrainable(loaded, flags.trainable) : loaded;
  const prepared = flags.tensorScale ? scaleTrainable(narrowed, flags.tensorScale, '--tensor-scale') : narrowed;
  // The log's records must carry the coordinator's signature: the key given, else the signing key next to the log.
  const keyFile = join(dirname(flags.log), 'coordinator.key');
  const publicKey = flags.logPublicKey !== undefined
    ? parseLogPublicKey(flags.logPublicKey, '--log-public-key')
    : existsSync(keyFile) ? LogSigner.fromPem(readFileSync(keyFile, 'utf8'), keyFile).publicKey : undefined;
  const result = await exportModel(prepared, flags.log, flags.out, noise, {
    ...(flags.logVersion === undefined ? {} : { version: flags.logVersion }),
    ...(publicKey ? { publicKey } : {}),
  });
  if (publicKey) process.stderr.write(`every entry is signed by ${publicKey}\n`);
  if (result.recovery) {
    process.stderr.write(`note: the log ends in a torn record (${result.recovery.reason}); exported from the ${result.recovery.keptEntries} whole entries\n`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify({ out: flags.out, ...result, recovery: undefined })}\n`);
  else process.stdout.write(`wrote ${flags.out} (${result.bytes} bytes): version ${result.version}, weights sha256 ${result.weightsSha256}\n`);
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('bake a job\'s trained weights (base + update log) into a plain ONNX model without the loss head')
    .requiredOption('--log <path>', 'the job\'s update log')
    .requiredOption('--out <file>', 'where to write the ONNX model')
    .option('--model <dir>', 'prepared model directory the job trained (default: the embedded default model)')
    .option('--trainable <patterns>', "the tensors the job trained (its --trainable): the model is narrowed the same way", patternList)
    .option('--tensor-scale <pattern=s,...>', "the job's --tensor-scale, applied to the model the same way", tensorScales)
    .option('--log-version <n>', 'log version to export (default: the head)', version)
    .option('--log-public-key <key>', 'check that every entry is signed by this key (ed25519:…; default: the key of coordinator.key next to the log, when there is one)')
    .option('--json', 'print the result as JSON')
    .action(async (flags: ExportFlags) => {
      await runExport(flags);
    });
}
