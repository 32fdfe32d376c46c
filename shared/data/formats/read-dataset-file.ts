/** Opens a local dataset file by its extension: .jsonl, .csv or .mzds (the binary format). */
import { extname } from 'node:path';
import type { FeatureArray, LocalDataset } from '../dataset.js';
import { readCsv } from './csv.js';
import { readJsonl } from './jsonl.js';
import { readMzds } from './binary.js';

export class UnknownDataFormatError extends Error {
  override name = 'UnknownDataFormatError';
}

export async function readDatasetFile(path: string, options: { numClasses?: number } = {}): Promise<LocalDataset<FeatureArray>> {
  switch (extname(path).toLowerCase()) {
    case '.jsonl':
      return readJsonl(path, options);
    case '.csv':
      return readCsv(path, options);
    case '.mzds':
      return readMzds(path);
    default:
      throw new UnknownDataFormatError(`${path}: unknown data format (expected .jsonl, .csv or .mzds)`);
  }
}
