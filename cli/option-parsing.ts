/** Shared pieces of the commands' option handling: number and size arguments (cli/command-options.ts uses them). */
import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
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

/** Splits a comma-separated list of name patterns; commas inside a glob's {a,b} stay in their pattern. */
export function patternList(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of value) {
    if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    if (ch === '{') depth++;
    else if (ch === '}' && depth > 0) depth--;
    current += ch;
  }
  parts.push(current.trim());
  if (parts.some((p) => p === '')) throw new InvalidArgumentError(`must be comma-separated name patterns, got ${JSON.stringify(value)}`);
  return parts;
}

/** `PATTERN=FACTOR` items, comma-separated (`fc1.*=0.5,fc2.*=0.25`): per-tensor scales (shared/model scaleTrainable). */
export function tensorScales(value: string): Array<{ pattern: string; factor: number }> {
  return patternList(value).map((item) => {
    const at = item.lastIndexOf('=');
    const factor = Number(item.slice(at + 1));
    if (at <= 0 || item.slice(at + 1).trim() === '' || !Number.isFinite(factor)) {
      throw new InvalidArgumentError(`each item must be PATTERN=FACTOR (e.g. 'fc1.*=0.5'), got ${JSON.stringify(item)}`);
    }
    return { pattern: item.slice(0, at), factor };
  });
}
