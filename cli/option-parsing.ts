/** Shared pieces of the commands' option handling: number arguments and flags mapped onto config paths. */
import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import type { ConfigLayers } from '../shared/config/index.js';
import { parseByteSize } from '../shared/plan/byte-size.js';

/** commander argument parser for a finite number. */
export function number(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError('must be a number');
  return parsed;
}

/** commander argument parser for a size in bytes ("512MiB", "1.5GiB", "800MB", a byte count). */
export function size(value: string): number {
  try {
    return parseByteSize(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A byte count in config: a positive integer, or a size as `mezo plan --budget` takes it ("512MiB", "1.5GiB"). */
export const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
    ctx.addIssue({ code: 'custom', message: `must be a positive whole number of bytes, got ${value}` });
    return z.NEVER;
  }
  try {
    return parseByteSize(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

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
