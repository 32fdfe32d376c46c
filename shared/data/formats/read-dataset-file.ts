/**
 * Opens a local dataset file by its extension: .jsonl, .csv or .mzds (the binary format). Text files hold plain
 * numbers, so the reader is told how to read them (`dtype`: the model's input type decides); a .mzds file
 * declares its own dtype, which must then agree.
 */
import { extname } from 'node:path';
import type { FeatureArray, FeatureDtype, LocalDataset } from '../dataset.js';
import { readCsv } from './csv.js';
import { readJsonl } from './jsonl.js';
import { readMzds } from './binary.js';

export class UnknownDataFormatError extends Error {
  override name = 'UnknownDataFormatError';
}

export class DataDtypeMismatchError extends Error {
  override name = 'DataDtypeMismatchError';
}

/**
 * How to read a text file's features for a model input of this element type: token ids (int64) for an int64
 * input such as a text model's, floats for anything else (a mismatch is reported when the data meets the model).
 */
export function featureDtypeForInput(elemType: string | undefined): FeatureDtype {
  return elemType === 'int64' ? 'int64' : 'float32';
}

export async function readDatasetFile(
  path: string,
  options: { numClasses?: number; dtype?: FeatureDtype } = {},
): Promise<LocalDataset<FeatureArray>> {
  switch (extname(path).toLowerCase()) {
    case '.jsonl':
      return readJsonl(path, options);
    case '.csv':
      return readCsv(path, options);
    case '.mzds': {
      const dataset = await readMzds(path);
      if (options.dtype !== undefined && dataset.dtype !== options.dtype) {
        throw new DataDtypeMismatchError(`${path}: holds ${dataset.dtype} features, but the model's input is ${options.dtype}`);
      }
      return dataset;
    }
    default:
      throw new UnknownDataFormatError(`${path}: unknown data format (expected .jsonl, .csv or .mzds)`);
  }
}
