/**
 * Decoding and encoding ONNX models with protobufjs and our wire-compatible schema subset
 * (proto/onnx/onnx-subset.proto). The schema is parsed once, on first use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { ModelPreparationError, reasonOf } from './errors.js';
import type { ModelProto } from './onnx-types.js';

// The source tree (shared/model/) and the compiled tree (dist/shared/model/) sit at different depths.
const SCHEMA_CANDIDATES = ['../../proto/onnx/onnx-subset.proto', '../../../proto/onnx/onnx-subset.proto'];

let modelType: protobuf.Type | undefined;

function schemaPath(): string {
  for (const rel of SCHEMA_CANDIDATES) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`ONNX schema not found (looked for ${SCHEMA_CANDIDATES.join(', ')} next to ${import.meta.url})`);
}

function modelProtoType(): protobuf.Type {
  if (modelType === undefined) {
    // keepCase: field names stay as in the ONNX spec (raw_data, op_type, …).
    const parsed = protobuf.parse(readFileSync(schemaPath(), 'utf8'), { keepCase: true });
    modelType = parsed.root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

/**
 * Decodes ModelProto bytes and checks the minimum every model has (an IR version, a graph, an opset), so that
 * arbitrary bytes which happen to parse as protobuf are still rejected as "not an ONNX model".
 */
export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  if (!(bytes instanceof Uint8Array)) {
    throw new ModelPreparationError(`${source}: model bytes must be a Uint8Array`);
  }
  if (bytes.length === 0) throw new ModelPreparationError(`${source}: the model is empty (0 bytes)`);
  let model: ModelProto;
  try {
    const type = modelProtoType();
    // toObject without defaults yields plain objects holding only the fields present on the wire (decoded
    // messages expose proto2 defaults through their prototype, which would make absent fields look set).
    // Bytes stay views of the input and int64 values stay Long, so nothing is copied or rounded.
    model = type.toObject(type.decode(bytes), { defaults: false }) as ModelProto;
  } catch (err) {
    throw new ModelPreparationError(
      `${source}: not a valid ONNX model (${bytes.length} bytes could not be decoded as ModelProto, truncated or not ONNX): ${reasonOf(err)}`,
      { cause: err },
    );
  }
  const missing: string[] = [];
  if (model.ir_version === undefined) missing.push('ir_version');
  if (model.graph === undefined) missing.push('graph');
  if (!model.opset_import || model.opset_import.length === 0) missing.push('opset_import');
  if (missing.length > 0) {
    throw new ModelPreparationError(
      `${source}: not a valid ONNX model (${bytes.length} bytes decode but lack ${missing.join(', ')}; truncated or not ONNX)`,
    );
  }
  return model;
}

/** Encodes a ModelProto (decoded or built as a plain object). */
export function encodeModel(model: ModelProto): Uint8Array {
  return modelProtoType().encode(model as unknown as Record<string, unknown>).finish();
}
