/**
 * The compiled `mezo` command in a child process, for tests that kill and restart it: its output collected,
 * its exit awaited, and every child tracked so the test can end what it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'bin', 'mezo.js');
export const COMPILED_CLI = join(ROOT, 'dist', 'cli', 'mezo.js');

export interface CliProcess {
  process: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The round settings the crash tests' coordinators share (job, rounds and the rest after the transport flags). */
export function crashJobFlags(jobId: string, rounds: number): string[] {
  return [
    '--job-id', jobId,
    '--rounds', String(rounds),
    '--agents-per-round', '2',
    '--seeds-per-agent', '1',
    '--deadline-ms', '10000',
    '--heartbeat-ms', '100',
    '--batch-size', '32',
    '--lr', '0.001',
    '--seed', '5',
  ];
}

export function startCliProcess(args: string[], children: ChildProcess[]): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { process: child, stderr: () => stderr, stdout: () => stdout, exited };
}

/** Ends the children a test started that are still running. */
export function killChildren(children: ChildProcess[]): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
