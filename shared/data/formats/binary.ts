/**
 * MZDS, a compact binary dataset file: a small header, then every feature row, then every label, all
 * little-endian (docs/data.md has the table). It exists because a device holding 60,000 images should not
 * parse 47 million decimal strings: the feature block is read straight into the Float32Array that trains.
 *
 *   0   4   magic "MZDS"
 *   4   2   version (u16) = 1
 *   6   1   feature dtype (u8): 1 = float32, 2 = int64
 *   7   1   rank (u8), 1..8
 *   8   4   numClasses (u32) >= 1
 *   12  4   headerBytes (u32) = 24 + 4·rank rounded up to a multiple of 8 (so the feature block is aligned)
 *   16  8   rows (u64)
 *   24  4·r feature shape (u32 each, >= 1), then zero padding up to headerBytes
 *   headerBytes: rows·F values (F = product of the shape; 4 bytes each for float32, 8 for int64)
 *   then: rows int32 labels
 */
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { LocalDataset, type FeatureArray, type FeatureDtype } from '../dataset.js';
import { describe, optionsObject, requireInt } from '../describe.js';
import { sourceName } from './text-io.js';

export const MZDS_MAGIC = 'MZDS';
export const MZDS_VERSION = 1;
const FIXED_HEADER_BYTES = 24;
const MAX_RANK = 8;
const DTYPE_CODES: Record<FeatureDtype, number> = { float32: 1, int64: 2 };
const CHUNK_BYTES = 1 << 23;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export interface MzdsHeader {
  version: number;
  dtype: FeatureDtype;
  featureShape: number[];
  numClasses: number;
  rows: number;
  /** Byte offset of the feature block. */
  headerBytes: number;
  /** Total file size the header implies. */
  fileBytes: number;
}

export interface BinaryReadOptions {
  /** Name used in error messages; default the file's base name. */
  name?: string;
}

const headerBytesFor = (rank: number): number => Math.ceil((FIXED_HEADER_BYTES + 4 * rank) / 8) * 8;

/** Encodes the header for a dataset of this description. */
export function encodeMzdsHeader(
  dtype: FeatureDtype,
  featureShape: readonly number[],
  numClasses: number,
  rows: number,
): Buffer {
  if (!Array.isArray(featureShape) || featureShape.length < 1 || featureShape.length > MAX_RANK) {
    throw new RangeError(`encodeMzdsHeader: featureShape must have rank 1..${MAX_RANK}, got ${describe(featureShape)}`);
  }
  featureShape.forEach((d, i) => requireInt(d, `encodeMzdsHeader: featureShape[${i}]`, 1, 0xffffffff));
  requireInt(numClasses, 'encodeMzdsHeader: numClasses', 1, 2 ** 31 - 1);
  requireInt(rows, 'encodeMzdsHeader: rows', 0);
  const headerBytes = headerBytesFor(featureShape.length);
  const buf = Buffer.alloc(headerBytes);
  buf.write(MZDS_MAGIC, 0, 'latin1');
  buf.writeUInt16LE(MZDS_VERSION, 4);
  buf.writeUInt8(DTYPE_CODES[dtype], 6);
  buf.writeUInt8(featureShape.length, 7);
  buf.writeUInt32LE(numClasses, 8);
  buf.writeUInt32LE(headerBytes, 12);
  buf.writeBigUInt64LE(BigInt(rows), 16);
  featureShape.forEach((d, i) => buf.writeUInt32LE(d, FIXED_HEADER_BYTES + 4 * i));
  return buf;
}

async function readExactly(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  source: string,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(CHUNK_BYTES, target.length - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) throw new RangeError(`${source}: file ends inside the ${what} (byte ${position + done})`);
    done += bytesRead;
  }
}

async function readHeader(handle: FileHandle, source: string): Promise<MzdsHeader> {
  const { size } = await handle.stat();
  if (size < FIXED_HEADER_BYTES) {
    throw new RangeError(`${source}: file is ${size} bytes, shorter than the ${FIXED_HEADER_BYTES}-byte MZDS header`);
  }
  const fixed = Buffer.alloc(FIXED_HEADER_BYTES);
  await readExactly(handle, fixed, 0, source, 'header');
  const magic = fixed.toString('latin1', 0, 4);
  if (magic !== MZDS_MAGIC) {
    throw new RangeError(`${source}: magic is ${describe(magic)}, expected "${MZDS_MAGIC}" (not an MZDS dataset file)`);
  }
  const version = fixed.readUInt16LE(4);
  if (version !== MZDS_VERSION) {
    throw new RangeError(`${source}: version is ${version}, this reader understands version ${MZDS_VERSION}`);
  }
  const code = fixed.readUInt8(6);
  const dtype = (Object.keys(DTYPE_CODES) as FeatureDtype[]).find((k) => DTYPE_CODES[k] === code);
  if (dtype === undefined) throw new RangeError(`${source}: dtype code is ${code}, expected 1 (float32) or 2 (int64)`);
  const rank = fixed.readUInt8(7);
  if (rank < 1 || rank > MAX_RANK) throw new RangeError(`${source}: rank is ${rank}, expected 1..${MAX_RANK}`);
  const numClasses = fixed.readUInt32LE(8);
  if (numClasses < 1 || numClasses > 2 ** 31 - 1) {
    throw new RangeError(`${source}: numClasses is ${numClasses}, expected >= 1`);
  }
  const headerBytes = fixed.readUInt32LE(12);
  if (headerBytes !== headerBytesFor(rank)) {
    throw new RangeError(`${source}: headerBytes is ${headerBytes}, expected ${headerBytesFor(rank)} for rank ${rank}`);
  }
  const rows64 = fixed.readBigUInt64LE(16);
  if (rows64 > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${source}: rows is ${rows64}, too large`);
  const rows = Number(rows64);
  if (size < headerBytes) {
    throw new RangeError(`${source}: file is ${size} bytes, shorter than its ${headerBytes}-byte header`);
  }
  const dims = Buffer.alloc(headerBytes - FIXED_HEADER_BYTES);
  await readExactly(handle, dims, FIXED_HEADER_BYTES, source, 'header');
  const featureShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const d = dims.readUInt32LE(4 * i);
    if (d < 1) throw new RangeError(`${source}: featureShape[${i}] is 0, expected >= 1`);
    featureShape.push(d);
  }
  const width = featureShape.reduce((a, d) => a * d, 1);
  const fileBytes = headerBytes + rows * width * (dtype === 'float32' ? 4 : 8) + rows * 4;
  if (size !== fileBytes) {
    throw new RangeError(
      `${source}: file is ${size} bytes, expected ${fileBytes} ` +
        `for ${rows} rows of ${dtype}[${featureShape.join('×')}] plus labels`,
    );
  }
  return { version, dtype, featureShape, numClasses, rows, headerBytes, fileBytes };
}

/** Reads and checks only the header (e.g. to size buffers or list a device's files). */
export async function readMzdsHeader(path: string, options?: BinaryReadOptions): Promise<MzdsHeader> {
  const opts = optionsObject(options, 'readMzdsHeader: options');
  const handle = await open(path, 'r');
  try {
    return await readHeader(handle, sourceName(path, opts.name));
  } finally {
    await handle.close();
  }
}

const bytesOf = (array: ArrayBufferView): Uint8Array =>
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

const featureArray = (dtype: FeatureDtype, length: number): FeatureArray =>
  dtype === 'float32' ? new Float32Array(length) : new BigInt64Array(length);

/** Reads an MZDS file. Feature and label blocks go straight into their typed arrays, in 8 MiB reads. */
export async function readMzds(path: string, options?: BinaryReadOptions): Promise<LocalDataset<FeatureArray>> {
  const opts = optionsObject(options, 'readMzds: options');
  const source = sourceName(path, opts.name);
  const handle = await open(path, 'r');
  try {
    const header = await readHeader(handle, source);
    const width = header.featureShape.reduce((a, d) => a * d, 1);
    const features = featureArray(header.dtype, header.rows * width);
    const labels = new Int32Array(header.rows);
    await readExactly(handle, bytesOf(features), header.headerBytes, source, 'feature block');
    await readExactly(handle, bytesOf(labels), header.headerBytes + features.byteLength, source, 'label block');
    if (!LITTLE_ENDIAN_HOST) {
      const b = Buffer.from(features.buffer, features.byteOffset, features.byteLength);
      if (features instanceof Float32Array) b.swap32();
      else b.swap64();
      Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength).swap32();
    }
    checkBlocks(features, labels, width, header.numClasses, source);
    return new LocalDataset<FeatureArray>({
      features,
      labels,
      featureShape: header.featureShape,
      numClasses: header.numClasses,
      name: source,
    });
  } finally {
    await handle.close();
  }
}

/** Rejects what the header cannot: labels out of range, non-finite floats, negative token ids. */
function checkBlocks(
  features: FeatureArray,
  labels: Int32Array,
  width: number,
  numClasses: number,
  source: string,
): void {
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r]!;
    if (y < 0 || y >= numClasses) {
      throw new RangeError(`${source} row ${r}: label is ${y}, expected an integer in [0, ${numClasses})`);
    }
  }
  if (features instanceof Float32Array) {
    for (let i = 0; i < features.length; i++) {
      if (!Number.isFinite(features[i]!)) {
        throw new RangeError(
          `${source} row ${Math.floor(i / width)}: feature ${i % width} is ${features[i]}, expected a finite number`,
        );
      }
    }
  } else {
    for (let i = 0; i < features.length; i++) {
      if (features[i]! < 0n) {
        throw new RangeError(
          `${source} row ${Math.floor(i / width)}: token ${i % width} is ${features[i]}, expected a non-negative id`,
        );
      }
    }
  }
}

/** Writes a dataset (or a view of one) as MZDS, gathering rows into ~8 MiB chunks. */
export async function writeMzds(path: string, dataset: LocalDataset): Promise<void> {
  if (!(dataset instanceof LocalDataset)) {
    throw new TypeError(`writeMzds: dataset must be a LocalDataset, got ${describe(dataset)}`);
  }
  if (dataset.featureShape.length > MAX_RANK) {
    throw new RangeError(
      `writeMzds: featureShape has rank ${dataset.featureShape.length}, MZDS allows at most ${MAX_RANK}`,
    );
  }
  const handle = await open(path, 'w');
  try {
    let position = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
        done += bytesWritten;
      }
      position += bytes.length;
    };
    await write(encodeMzdsHeader(dataset.dtype, dataset.featureShape, dataset.numClasses, dataset.size));
    const width = dataset.featureSize;
    const bytesPerRow = width * (dataset.dtype === 'float32' ? 4 : 8);
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / bytesPerRow));
    const chunk = featureArray(dataset.dtype, rowsPerChunk * width);
    for (let start = 0; start < dataset.size; start += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, dataset.size - start);
      for (let k = 0; k < n; k++) chunk.set(dataset.features(start + k) as never, k * width);
      await write(littleEndian(chunk.subarray(0, n * width)));
    }
    await write(littleEndian(dataset.labels()));
  } finally {
    await handle.close();
  }
}

/** The bytes of `array` in little-endian order (a swapped copy on a big-endian host). */
function littleEndian(array: Float32Array | BigInt64Array | Int32Array): Uint8Array {
  const bytes = bytesOf(array);
  if (LITTLE_ENDIAN_HOST) return bytes;
  const copy = Buffer.from(bytes);
  if (array instanceof BigInt64Array) copy.swap64();
  else copy.swap32();
  return copy;
}
