/**
 * Reading a float32 initializer's values, wherever the exporter put them: raw_data (little-endian bytes),
 * float_data (a packed repeated field), or a side file named by external_data (data_location = EXTERNAL).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { ModelPreparationError, reasonOf } from './errors.js';
import { HOST_LITTLE_ENDIAN } from './onnx-builders.js';
import { DATA_LOCATION_EXTERNAL, int64ToNumber, type TensorProto } from './onnx-types.js';

export function tensorDims(tensor: TensorProto): number[] {
  return (tensor.dims ?? []).map((d, i) => {
    const n = int64ToNumber(d, `tensor ${JSON.stringify(tensor.name)} dims[${i}]`);
    if (n < 0) throw new ModelPreparationError(`tensor ${JSON.stringify(tensor.name)} has a negative dimension ${n}`);
    return n;
  });
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function isExternal(tensor: TensorProto): boolean {
  return tensor.data_location === DATA_LOCATION_EXTERNAL;
}

/** Where an external tensor's bytes are: the side file (resolved inside modelDir), offset and length. */
export interface ExternalLocation {
  file: string;
  offset: number;
  length: number | undefined;
}

export function externalLocation(tensor: TensorProto, modelDir: string): ExternalLocation {
  const name = JSON.stringify(tensor.name);
  const entries = new Map((tensor.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  if (!location) throw new ModelPreparationError(`external tensor ${name} has no external_data "location"`);
  // A model must not make us read files outside its own directory.
  const normalized = normalize(location);
  if (isAbsolute(location) || normalized === '..' || normalized.startsWith(`..${sep}`)) {
    throw new ModelPreparationError(
      `external tensor ${name}: location ${JSON.stringify(location)} must be a relative path inside the model's directory`,
    );
  }
  const parseField = (key: string): number | undefined => {
    const raw = entries.get(key);
    if (raw === undefined) return undefined;
    if (!/^[0-9]+$/.test(raw)) {
      throw new ModelPreparationError(`external tensor ${name}: external_data "${key}" must be a non-negative integer, got ${JSON.stringify(raw)}`);
    }
    return Number(raw);
  };
  return { file: resolve(modelDir, normalized), offset: parseField('offset') ?? 0, length: parseField('length') };
}

function readExternalBytes(tensor: TensorProto, modelDir: string | undefined, byteLength: number): Uint8Array {
  const name = JSON.stringify(tensor.name);
  if (modelDir === undefined) {
    throw new ModelPreparationError(
      `tensor ${name} keeps its data in an external file; pass the model as a path (not bytes) so the file can be found`,
    );
  }
  const loc = externalLocation(tensor, modelDir);
  if (loc.length !== undefined && loc.length !== byteLength) {
    throw new ModelPreparationError(
      `external tensor ${name}: external_data length ${loc.length} does not match its shape (${byteLength} bytes expected)`,
    );
  }
  let fd: number;
  try {
    fd = openSync(loc.file, 'r');
  } catch (err) {
    throw new ModelPreparationError(`external tensor ${name}: cannot open data file ${loc.file}: ${reasonOf(err)}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    if (loc.offset + byteLength > size) {
      throw new ModelPreparationError(
        `external tensor ${name}: data file ${loc.file} has ${size} bytes, too short for ${byteLength} bytes at offset ${loc.offset}`,
      );
    }
    const bytes = new Uint8Array(byteLength);
    let done = 0;
    while (done < byteLength) {
      const n = readSync(fd, bytes, done, byteLength - done, loc.offset + done);
      if (n === 0) throw new ModelPreparationError(`external tensor ${name}: unexpected end of ${loc.file}`);
      done += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

function fromLittleEndian(bytes: Uint8Array, count: number, out: Float32Array): void {
  if (HOST_LITTLE_ENDIAN) {
    // Copy through a Uint8Array view so an unaligned source (raw_data inside the model buffer) is fine.
    new Uint8Array(out.buffer, out.byteOffset, count * 4).set(bytes.subarray(0, count * 4));
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
}

/**
 * Copies a float32 tensor's values into `out` (length = element count). `modelDir` is the directory of the
 * model file, needed only for external data.
 */
export function readFloat32Into(tensor: TensorProto, out: Float32Array, modelDir: string | undefined): void {
  const name = JSON.stringify(tensor.name);
  const count = out.length;
  if (isExternal(tensor)) {
    fromLittleEndian(readExternalBytes(tensor, modelDir, count * 4), count, out);
    return;
  }
  if (tensor.raw_data !== undefined && tensor.raw_data.length > 0) {
    if (tensor.raw_data.length !== count * 4) {
      throw new ModelPreparationError(
        `tensor ${name}: raw_data has ${tensor.raw_data.length} bytes but its shape needs ${count * 4} (float32)`,
      );
    }
    fromLittleEndian(tensor.raw_data, count, out);
    return;
  }
  const values = tensor.float_data ?? [];
  if (values.length !== count) {
    throw new ModelPreparationError(`tensor ${name}: float_data has ${values.length} values but its shape needs ${count}`);
  }
  out.set(values);
}

// Bytes per element by TensorProto.DataType; 4-bit types (21-23) pack two per byte.
const ELEMENT_BITS: Record<number, number> = {
  1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128, 16: 16,
  17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4,
};

/** Turns an external tensor into an inline one (raw_data), so the prepared model needs no side files. */
export function inlineExternal(tensor: TensorProto, modelDir: string | undefined): void {
  const bits = ELEMENT_BITS[tensor.data_type ?? 0];
  if (bits === undefined) {
    throw new ModelPreparationError(
      `external tensor ${JSON.stringify(tensor.name)} has element type ${tensor.data_type ?? 'undefined'}, which cannot be inlined`,
    );
  }
  const byteLength = Math.ceil((elementCount(tensorDims(tensor)) * bits) / 8);
  tensor.raw_data = readExternalBytes(tensor, modelDir, byteLength);
  delete tensor.external_data;
  delete tensor.data_location;
}
