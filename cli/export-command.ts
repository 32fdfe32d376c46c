/**
 * `mezo export`: bakes a job's trained weights — the prepared base plus the update log up to a version — into a
 * plain ONNX model without the loss head, which runs like the original model.
 */
import { InvalidArgumentError, type Command } from 'commander';

function version(value: string): number {
  const parsed = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError('must be a non-negative integer');
  return parsed;
}

export interface ExportFlags {
  log: string;
  out: string;
  model?: string;
  logVersion?: number;
  json?: boolean;
}

export async function runExport(flags: ExportFlags): Promise<void> {
  const { loadPrepared, loadDefaultModel } = await import('../shared/model/index.js');
  const { noise } = await import('../shared/noise/index.js');
  const { exportModel } = await import('../coordinator/export-model.js');
  const prepared = flags.model ? await loadPrepared(flags.model) : await loadDefaultModel();
  const result = await exportModel(prepared, flags.log, flags.out, noise, flags.logVersion === undefined ? {} : { version: flags.logVersion });
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
    .option('--log-version <n>', 'log version to export (default: the head)', version)
    .option('--json', 'print the result as JSON')
    .action(async (flags: ExportFlags) => {
      await runExport(flags);
    });
}
