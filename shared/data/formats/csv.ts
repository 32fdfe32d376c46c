/**
 * CSV: one example per line, numeric feature columns plus one integer label column. Fields may be quoted
 * ("1.5", with "" for a literal quote) but a quoted field may not span lines — a feature row never needs to.
 * Errors name the file, line and column: "data.csv line 9: column px3 is "abc", expected a finite number".
 */
import { LocalDataset, type FeatureArray } from '../dataset.js';
import { describe, optionsObject } from '../describe.js';
import { RecordBuilder, type RecordFormatOptions } from './record-builder.js';
import { formatValue, openChunkWriter, readLines, sourceName } from './text-io.js';

export interface CsvReadOptions extends RecordFormatOptions {
  /** Field separator, one character (default ','). */
  delimiter?: string;
  /**
   * Whether line 1 names the columns. 'auto' (default): it does when a non-empty cell is not a number — so a
   * header made only of numbers must be declared with true.
   */
  header?: boolean | 'auto';
  /**
   * The label column: a header name, or a 0-based index (negative counts from the end). Default: the column
   * named "label" when the header has one, else the last column. Every other column is a feature.
   */
  labelColumn?: string | number;
}

export interface CsvWriteOptions {
  delimiter?: string;
  /** Write a header line "f0,f1,…,label" (default true). */
  header?: boolean;
  /** Name of the label column in the header (default 'label'). */
  labelName?: string;
}

function delimiterOf(value: unknown, method: string): string {
  const d = value ?? ',';
  if (typeof d !== 'string' || d.length !== 1 || d === '"' || d === '\n' || d === '\r') {
    throw new TypeError(
      `${method}: options.delimiter must be one character other than a quote or newline, got ${describe(d)}`,
    );
  }
  return d;
}

/** Splits one CSV line into its fields; `at` prefixes errors ("data.csv line 3"). */
export function splitCsvLine(line: string, delimiter: string, at: string): string[] {
  const fields: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close < 0) throw new SyntaxError(`${at}: field ${fields.length + 1} has an unterminated quote`);
        value += line.slice(i, close);
        if (line[close + 1] === '"') {
          value += '"';
          i = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      if (i < n && line[i] !== delimiter) {
        throw new SyntaxError(`${at}: field ${fields.length + 1} has text after its closing quote`);
      }
      fields.push(value);
    } else {
      const end = line.indexOf(delimiter, i);
      fields.push(end < 0 ? line.slice(i) : line.slice(i, end));
      i = end < 0 ? n : end;
    }
    if (i >= n) return fields;
    i++; // past the delimiter; a line ending in one has an empty last field
    if (i === n) {
      fields.push('');
      return fields;
    }
  }
}

const isNumeric = (cell: string): boolean => cell.trim() !== '' && !Number.isNaN(Number(cell));

function parseCell(cell: string): number | string {
  return isNumeric(cell) ? Number(cell) : cell;
}

/** Reads a CSV file into a dataset, streaming it line by line. Blank lines are skipped. */
export async function readCsv(
  path: string,
  options: CsvReadOptions & { dtype: 'int64' },
): Promise<LocalDataset<BigInt64Array>>;
export async function readCsv(
  path: string,
  options?: CsvReadOptions & { dtype?: 'float32' },
): Promise<LocalDataset<Float32Array>>;
export async function readCsv(path: string, options?: CsvReadOptions): Promise<LocalDataset<FeatureArray>>;
export async function readCsv(path: string, options?: CsvReadOptions): Promise<LocalDataset<FeatureArray>> {
  const opts = optionsObject(options, 'readCsv: options');
  const delimiter = delimiterOf(opts.delimiter, 'readCsv');
  const headerMode = opts.header ?? 'auto';
  if (headerMode !== true && headerMode !== false && headerMode !== 'auto') {
    throw new TypeError(`readCsv: options.header must be true, false or 'auto', got ${describe(headerMode)}`);
  }
  const source = sourceName(path, opts.name);
  const builder = new RecordBuilder(source, opts);
  let columns = -1;
  let names: string[] | null = null;
  let labelIndex = -1;
  let columnName = (c: number): string => `column ${c + 1}`;
  const values: unknown[] = [];
  for await (const { line, lineNo } of readLines(path)) {
    if (line.trim() === '') continue;
    const at = `${source} line ${lineNo}`;
    const cells = splitCsvLine(line, delimiter, at);
    if (columns < 0) {
      columns = cells.length;
      if (columns < 2) throw new RangeError(`${at}: found ${columns} column, need at least one feature and a label`);
      const isHeader = headerMode === 'auto' ? cells.some((c) => c.trim() !== '' && !isNumeric(c)) : headerMode;
      if (isHeader) names = cells.map((c) => c.trim());
      labelIndex = resolveLabelColumn(opts.labelColumn, names, columns, source);
      if (names !== null) {
        const header = names;
        columnName = (c) => `column ${header[c]}`;
        continue;
      }
    }
    if (cells.length !== columns) throw new RangeError(`${at}: has ${cells.length} columns, expected ${columns}`);
    values.length = 0;
    let label: unknown;
    for (let c = 0; c < columns; c++) {
      const cell = cells[c]!;
      if (cell.trim() === '') throw new RangeError(`${at}: ${columnName(c)} is empty`);
      if (c === labelIndex) label = parseCell(cell);
      else values.push(parseCell(cell));
    }
    const featureColumn = (j: number): number => (j < labelIndex ? j : j + 1);
    const labelName = columnName(labelIndex);
    builder.add(values, label, `line ${lineNo}`, 'features', labelName, (j) => columnName(featureColumn(j)));
  }
  return builder.finish();
}

function resolveLabelColumn(option: unknown, names: string[] | null, columns: number, source: string): number {
  if (option === undefined) {
    const named = names?.indexOf('label') ?? -1;
    return named >= 0 ? named : columns - 1;
  }
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < -columns || option >= columns) {
      throw new RangeError(
        `${source}: options.labelColumn must be an integer in [${-columns}, ${columns}), got ${describe(option)}`,
      );
    }
    return option < 0 ? columns + option : option;
  }
  if (typeof option === 'string') {
    if (names === null) throw new RangeError(`${source}: options.labelColumn ${describe(option)} needs a header line`);
    const index = names.indexOf(option);
    if (index < 0) {
      throw new RangeError(
        `${source}: label column ${describe(option)} is not in the header ` +
          `(${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''})`,
      );
    }
    return index;
  }
  throw new TypeError(`${source}: options.labelColumn must be a column name or index, got ${describe(option)}`);
}

/** Writes a dataset as CSV: feature columns f0…f{n-1} then the label column. */
export async function writeCsv(path: string, dataset: LocalDataset, options?: CsvWriteOptions): Promise<void> {
  const opts = optionsObject(options, 'writeCsv: options');
  const delimiter = delimiterOf(opts.delimiter, 'writeCsv');
  if (!(dataset instanceof LocalDataset)) {
    throw new TypeError(`writeCsv: dataset must be a LocalDataset, got ${describe(dataset)}`);
  }
  const labelName = opts.labelName ?? 'label';
  if (typeof labelName !== 'string' || labelName === '' || labelName.includes(delimiter) || /["\r\n]/.test(labelName)) {
    throw new TypeError(
      `writeCsv: options.labelName must be a plain non-empty column name, got ${describe(labelName)}`,
    );
  }
  const out = await openChunkWriter(path);
  try {
    if (opts.header ?? true) {
      const header = Array.from({ length: dataset.featureSize }, (_, j) => `f${j}`);
      header.push(labelName);
      await out.write(`${header.join(delimiter)}\n`);
    }
    const cells = new Array<string>(dataset.featureSize + 1);
    for (let i = 0; i < dataset.size; i++) {
      const row = dataset.features(i);
      for (let j = 0; j < row.length; j++) cells[j] = formatValue(row[j]!);
      cells[row.length] = String(dataset.label(i));
      await out.write(`${cells.join(delimiter)}\n`);
    }
  } finally {
    await out.close();
  }
}
