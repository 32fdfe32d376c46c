/** Local dataset files a device holds: JSONL, CSV (both streamed line by line) and the binary MZDS format. */
export { readJsonl, writeJsonl } from './jsonl.js';
export type { JsonlFieldOptions, JsonlReadOptions } from './jsonl.js';
export { readCsv, splitCsvLine, writeCsv } from './csv.js';
export type { CsvReadOptions, CsvWriteOptions } from './csv.js';
export { encodeMzdsHeader, MZDS_MAGIC, MZDS_VERSION, readMzds, readMzdsHeader, writeMzds } from './binary.js';
export type { BinaryReadOptions, MzdsHeader } from './binary.js';
export type { RecordFormatOptions } from './record-builder.js';
export { DataDtypeMismatchError, featureDtypeForInput, readDatasetFile, UnknownDataFormatError } from './read-dataset-file.js';
