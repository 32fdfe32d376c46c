/** Shared pieces of the commands' option handling: number arguments and flags mapped onto config paths. */
import { InvalidArgumentError } from 'commander';
import type { ConfigLayers } from '../shared/config/index.js';

/** commander argument parser for a finite number. */
export function number(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError('must be a number');
  return parsed;
}

const kebab = (name: string): string => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * The config layers given on the command line: the flags that were set, moved to their config paths (with
 * their --names for error messages), and the --config file if one was named.
 */
export function layeredFlags(flags: Record<string, unknown>, table: Record<string, string>): Pick<ConfigLayers, 'flags' | 'flagNames' | 'file'> {
  const layered: Record<string, unknown> = {};
  const flagNames: Record<string, string> = {};
  for (const [option, path] of Object.entries(table)) {
    if (flags[option] !== undefined) {
      layered[path] = flags[option];
      flagNames[path] = kebab(option);
    }
  }
  return { flags: layered, flagNames, ...(typeof flags.config === 'string' ? { file: flags.config } : {}) };
}
