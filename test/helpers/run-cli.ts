import { Command } from 'commander';
import { vi } from 'vitest';

export interface CliRun {
  stdout: string;
  stderr: string;
  /** The exit code the command set (process.exitCode), reset afterwards. */
  exitCode: number;
  /** Commander's own error, for usage errors it reports itself. */
  error?: Error;
}

/**
 * Runs `mezo <args>` in-process with the given commands registered, capturing stdout and stderr, so command
 * tests need no child process.
 */
export async function runCli(register: Array<(program: Command) => void>, ...args: string[]): Promise<CliRun> {
  const program = new Command('mezo').exitOverride();
  let stderr = '';
  program.configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => undefined });
  for (const add of register) add(program);
  for (const sub of program.commands) sub.exitOverride().configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => undefined });
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const exitCode = (): number => {
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return code;
  };
  try {
    await program.parseAsync(['node', 'mezo', ...args]);
    return { stdout, stderr, exitCode: exitCode() };
  } catch (error) {
    return { stdout, stderr, exitCode: exitCode(), error: error as Error };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
