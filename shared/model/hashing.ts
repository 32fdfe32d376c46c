/**
 * Content hashes recorded in the manifest. The slab is hashed as little-endian float32 bytes (the on-disk form),
 * so the hash is the same on every host.
 */
import { createHash } from 'node:crypto';
import { littleEndianBytes, HOST_LITTLE_ENDIAN } from './onnx-builders.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function slabSha256(slab: Float32Array): string {
  const bytes = HOST_LITTLE_ENDIAN ? new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength) : littleEndianBytes(slab);
  return sha256Hex(bytes);
}
