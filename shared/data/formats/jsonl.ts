/**
 * JSON Lines: one record per line, {"x": [...], "y": k} by default. Blank lines are skipped (a trailing
 * newline is normal); every other line must be one JSON object. Records are checked with a zod schema and
 * errors name the file, the line and the field: "data.jsonl line 17: x has 783 values, expected 784".
 */
import { z } from 'zod';
import { LocalDataset, type FeatureArray } from '../dataset.js';
import { describe, optionsObject } from '../describe.js';
import { RecordBuilder, type RecordFormatOptions } from './record-builder.js';
import { formatValue, openChunkWriter, readLines, sourceName } from './text-io.js';

export interface JsonlFieldOptions {
  /** Field holding the feature array (default 'x'). */
  featureField?: string;
  /** Field holding the integer label (default 'y'). */
  labelField?: string;
}

export type JsonlReadOptions = RecordFormatOptions & JsonlFieldOptions;

function fieldNames(options: JsonlFieldOptions, method: string): { x: string; y: string } {
  const x = options.featureField ?? 'x';
  const y = options.labelField ?? 'y';
  for (const [key, value] of [
    ['featureField', x],
    ['labelField', y],
  ] as const) {
    if (typeof value !== 'string' || value.length === 0) {
      throw new TypeError(`${method}: options.${key} must be a non-empty string, got ${describe(value)}`);
    }
  }
  if (x === y) {
    throw new RangeError(`${method}: options.featureField and options.labelField must differ, both are ${describe(x)}`);
  }
  return { x, y };
}

function renderPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? 'record' : out;
}

const EXPECTED_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  array: 'an array',
  object: 'a JSON object',
};

/** One zod issue as "x[3] must be a number, got "abc"" — short, and naming the field as the file spells it. */
function formatIssue(issue: z.core.$ZodIssue): string {
  const path = renderPath(issue.path);
  const got = 'input' in issue && issue.input !== undefined ? describe(issue.input) : 'nothing';
  switch (issue.code) {
    case 'invalid_type':
      if (got === 'nothing') return `${path} is missing`;
      return `${path} must be ${EXPECTED_NAMES[issue.expected] ?? issue.expected}, got ${got}`;
    case 'too_small':
      return `${path} must be >= ${String(issue.minimum)}, got ${got}`;
    default:
      return `${path}: ${issue.message}`;
  }
}

function recordSchema(x: string, y: string, tokens: boolean): z.ZodType<Record<string, unknown>> {
  const value = tokens ? z.int().min(0) : z.number();
  return z.object({ [x]: z.array(value), [y]: z.int().min(0) }) as unknown as z.ZodType<Record<string, unknown>>;
}

/** Reads a JSONL file into a dataset, streaming it line by line (dtype 'int64' gives token-id rows). */
export async function readJsonl(
  path: string,
  options: JsonlReadOptions & { dtype: 'int64' },
): Promise<LocalDataset<BigInt64Array>>;
export async function readJsonl(
  path: string,
  options?: JsonlReadOptions & { dtype?: 'float32' },
): Promise<LocalDataset<Float32Array>>;
export async function readJsonl(path: string, options?: JsonlReadOptions): Promise<LocalDataset<FeatureArray>>;
export async function readJsonl(path: string, options?: JsonlReadOptions): Promise<LocalDataset<FeatureArray>> {
  const opts = optionsObject(options, 'readJsonl: options');
  const { x, y } = fieldNames(opts, 'readJsonl');
  const source = sourceName(path, opts.name);
  const builder = new RecordBuilder(source, opts);
  const schema = recordSchema(x, y, opts.dtype === 'int64');
  for await (const { line, lineNo } of readLines(path)) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new SyntaxError(`${source} line ${lineNo}: not valid JSON (${reason})`);
    }
    const result = schema.safeParse(parsed, { reportInput: true });
    if (!result.success) {
      // The first issue is enough to fix the line; listing every bad pixel would bury it.
      throw new RangeError(`${source} line ${lineNo}: ${formatIssue(result.error.issues[0]!)}`);
    }
    const values = result.data[x] as number[];
    builder.add(values, result.data[y], `line ${lineNo}`, x, y, (j) => `${x}[${j}]`);
  }
  return builder.finish();
}

/** Writes a dataset as JSONL, one {"<featureField>": [...], "<labelField>": k} per line. */
export async function writeJsonl(path: string, dataset: LocalDataset, options?: JsonlFieldOptions): Promise<void> {
  const opts = optionsObject(options, 'writeJsonl: options');
  const { x, y } = fieldNames(opts, 'writeJsonl');
  if (!(dataset instanceof LocalDataset)) {
    throw new TypeError(`writeJsonl: dataset must be a LocalDataset, got ${describe(dataset)}`);
  }
  const prefix = `{${JSON.stringify(x)}:[`;
  const middle = `],${JSON.stringify(y)}:`;
  const out = await openChunkWriter(path);
  try {
    for (let i = 0; i < dataset.size; i++) {
      const row = dataset.features(i);
      const cells = new Array<string>(row.length);
      for (let j = 0; j < row.length; j++) cells[j] = formatValue(row[j]!);
      await out.write(`${prefix}${cells.join(',')}${middle}${dataset.label(i)}}\n`);
    }
  } finally {
    await out.close();
  }
}
