/**
 * The `mezo` command line. Each subcommand lives in its own module and is registered here.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../shared/config/index.js';
import { registerInfoCommand } from './info-command.js';
import { registerTrainCommand } from './train-command.js';
import { registerPlanCommand } from './plan-command.js';
import { registerPrepareCommand } from './prepare-command.js';
import { registerZooCommand } from './zoo-command.js';
import { registerCoordinatorCommand } from './coordinator-command.js';
import { registerAgentCommand } from './agent-command.js';
import { registerExportCommand } from './export-command.js';
import { registerSimulateCommand } from './simulate-command.js';
import { registerReportCommand } from './report-command.js';
import { registerNatsConfigCommand } from './nats-config-command.js';

function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mezo-fleet' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Try the next location: the source tree and dist/ sit at different depths.
    }
  }
  return '0.0.0';
}

export function buildProgram(): Command {
  const program = new Command('mezo')
    .description('Federated, backprop-free (MeZO) fine-tuning of ONNX models on fleets of memory-constrained devices')
    .version(packageVersion(), '-V, --version', 'print the mezo-fleet version')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerInfoCommand(program);
  registerTrainCommand(program);
  registerPlanCommand(program);
  registerPrepareCommand(program);
  registerZooCommand(program);
  registerCoordinatorCommand(program);
  registerAgentCommand(program);
  registerExportCommand(program);
  registerSimulateCommand(program);
  registerNatsConfigCommand(program);
  registerReportCommand(program);
  return program;
}

/** Errors that mean a bug rather than bad input or an unreachable peer: their stack helps whoever reports it. */
const BUG_ERRORS = new Set(['TypeError', 'ReferenceError', 'SyntaxError']);

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  const err = error instanceof Error ? error : new Error(String(error));
  // A bad flag or an unreachable server gets one line that names it, not a stack trace.
  process.stderr.write(`mezo: ${err.message}\n`);
  if (BUG_ERRORS.has(err.name) || process.env.MEZO_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
  process.exitCode = err instanceof ConfigError ? 2 : 1;
}
