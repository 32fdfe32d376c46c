/**
 * `mezo report <run.json>`: renders a finished run's record (written by `mezo coordinator --run-record` or
 * `mezo simulate`) as index.html — self-contained, charts inline as SVG — and one PNG per chart.
 */
import { basename, dirname, extname, join } from 'node:path';
import type { Command } from 'commander';

export interface ReportFlags {
  out?: string;
  json?: boolean;
}

/** Default output folder: `<name>-report/` next to the record. */
export function defaultReportDir(recordPath: string): string {
  return join(dirname(recordPath), `${basename(recordPath, extname(recordPath))}-report`);
}

export async function runReport(recordPath: string, flags: ReportFlags): Promise<void> {
  const { readRunRecord } = await import('../coordinator/run-record.js');
  const { writeReport } = await import('../coordinator/report/render-report.js');
  const record = await readRunRecord(recordPath);
  const output = await writeReport(record, flags.out ?? defaultReportDir(recordPath));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(output)}\n`);
    return;
  }
  process.stdout.write(`wrote ${output.html}\n`);
  for (const path of Object.values(output.pngs)) process.stdout.write(`wrote ${path}\n`);
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('render a run record (run.json) as an HTML page and PNG charts')
    .argument('<run.json>', 'run record from `mezo coordinator --run-record` or `mezo simulate`')
    .option('--out <dir>', 'output folder (default: <name>-report/ next to the record)')
    .option('--json', 'print the written paths as JSON')
    .action(async (recordPath: string, flags: ReportFlags) => {
      const { RunRecordError } = await import('../coordinator/run-record.js');
      try {
        await runReport(recordPath, flags);
      } catch (err) {
        if (!(err instanceof RunRecordError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
      }
    });
}
