/**
 * Shared benchmark plumbing: timing by repeated runs (median, with min and max kept), host facts, and the
 * JSON + table output every suite uses. Benchmarks report; they never assert — targets are shown as ratios.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export interface Timing {
  /** Median wall time of one call, in milliseconds. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  repetitions: number;
}

/** Times `run` `repetitions` times after `warmup` untimed calls; `reset` runs before each call, untimed. */
export function time(run: () => void, options: { repetitions?: number; warmup?: number; reset?: () => void } = {}): Timing {
  const repetitions = options.repetitions ?? 7;
  for (let i = 0; i < (options.warmup ?? 1); i++) {
    options.reset?.();
    run();
  }
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    options.reset?.();
    const started = process.hrtime.bigint();
    run();
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return {
    medianMs: samples[Math.floor(samples.length / 2)]!,
    minMs: samples[0]!,
    maxMs: samples[samples.length - 1]!,
    repetitions,
  };
}

export function hostInfo(): Record<string, unknown> {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
  };
}

export interface SuiteResult {
  suite: string;
  date: string;
  host: Record<string, unknown>;
  /** Rows for the printed table: every value already formatted or a number. */
  table: Array<Record<string, string | number>>;
  [key: string]: unknown;
}

/** Writes bench-results/<suite>.json (latest) and a dated copy, and prints the table. */
export function report(result: SuiteResult, directory = 'bench-results'): string {
  mkdirSync(directory, { recursive: true });
  const latest = join(directory, `${result.suite}.json`);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  writeFileSync(latest, json);
  writeFileSync(join(directory, `${result.suite}-${result.date.replace(/[:.]/g, '-')}.json`), json);
  printTable(result.suite, result.table);
  return latest;
}

export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: string | number | undefined): string =>
    value === undefined ? '' : typeof value === 'number' ? formatNumber(value) : value;
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((row) => cell(row[c]).length)));
  const line = (values: string[]): string =>
    values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${title}\n${line(columns)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((c) => cell(row[c])))}\n`);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/**
 * Runs one benchmark configuration in a fresh child process (peak RSS is per process) and resolves with what
 * the child reports over IPC. The child is a compiled module that calls `reportToParent`.
 */
export function forkBenchChild<Config, Report>(childPath: string, config: Config, env: NodeJS.ProcessEnv = {}): Promise<Report> {
  if (!existsSync(childPath)) {
    throw new Error(`${childPath} not found: run benchmarks from the compiled tree (npm run build, then npm run bench)`);
  }
  return new Promise((resolvePromise, reject) => {
    const child = fork(childPath, [JSON.stringify(config)], {
      execArgv: ['--expose-gc'],
      env: { ...process.env, MEZO_LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let settled = false;
    child.on('message', (message: { ok: boolean; report?: Report; error?: string }) => {
      settled = true;
      if (message.ok) resolvePromise(message.report!);
      else reject(new Error(`benchmark child failed: ${message.error}`));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!settled) reject(new Error(`benchmark child exited with code ${code} before reporting`));
    });
  });
}

/** The child side of forkBenchChild: runs `main` with the parsed config when forked with IPC, and reports. */
export function reportToParent<Config, Report>(main: (config: Config) => Promise<Report>): void {
  if (process.send === undefined) return; // imported, not forked: do nothing
  main(JSON.parse(process.argv[2] ?? '') as Config).then(
    (report) => process.send!({ ok: true, report }, () => process.exit(0)),
    (err: unknown) =>
      process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
  );
}

/** read(2)/write(2) byte totals of this process (Linux /proc/self/io); zeros where unavailable. */
export function processIo(): { readBytes: number; writtenBytes: number } {
  try {
    const text = readFileSync('/proc/self/io', 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    return { readBytes: field('rchar'), writtenBytes: field('wchar') };
  } catch {
    return { readBytes: 0, writtenBytes: 0 };
  }
}
