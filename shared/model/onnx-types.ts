/**
 * TypeScript shapes of the ONNX messages as protobufjs decodes them from proto/onnx/onnx-subset.proto (field
 * names as in the spec). Every field is optional because proto2 keeps presence: a field absent on the wire is
 * absent here too, which is what lets an untouched message re-encode to the same bytes.
 */
/** The part of protobufjs's Long (its int64 representation) we use. */
export interface LongLike {
  toNumber(): number;
}

/** protobufjs hands int64 fields back as Long objects; we write plain numbers. */
export type Int64 = number | LongLike;

export interface StringStringEntry {
  key?: string;
  value?: string;
}

export interface OperatorSetId {
  domain?: string;
  version?: Int64;
}

export interface Dimension {
  dim_value?: Int64;
  dim_param?: string;
  denotation?: string;
}

export interface TensorShape {
  dim?: Dimension[];
}

export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: TensorShape };
  sequence_type?: Uint8Array;
  map_type?: Uint8Array;
  opaque_type?: Uint8Array;
  sparse_tensor_type?: Uint8Array;
  optional_type?: Uint8Array;
  denotation?: string;
}

export interface ValueInfo {
  name?: string;
  type?: TypeProto;
  doc_string?: string;
  metadata_props?: StringStringEntry[];
}

export interface TensorProto {
  dims?: Int64[];
  data_type?: number;
  segment?: { begin?: Int64; end?: Int64 };
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: Int64[];
  name?: string;
  doc_string?: string;
  raw_data?: Uint8Array;
  external_data?: StringStringEntry[];
  data_location?: number;
  double_data?: number[];
  uint64_data?: Int64[];
  metadata_props?: StringStringEntry[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: Int64[];
}

export interface AttributeProto {
  name?: string;
  ref_attr_name?: string;
  doc_string?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparse_tensor?: SparseTensorProto;
  tp?: TypeProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparse_tensors?: SparseTensorProto[];
  type_protos?: TypeProto[];
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
  metadata_props?: StringStringEntry[];
  device_configurations?: Uint8Array[];
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparse_initializer?: SparseTensorProto[];
  doc_string?: string;
  input?: ValueInfo[];
  output?: ValueInfo[];
  value_info?: ValueInfo[];
  quantization_annotation?: Uint8Array[];
  metadata_props?: StringStringEntry[];
}

export interface ModelProto {
  ir_version?: Int64;
  opset_import?: OperatorSetId[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: Int64;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: StringStringEntry[];
  training_info?: Uint8Array[];
  functions?: Uint8Array[];
  configuration?: Uint8Array[];
}

/** TensorProto.DataType values this project reads or writes. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** TensorProto.DataLocation.EXTERNAL: the payload lives in a side file named by external_data. */
export const DATA_LOCATION_EXTERNAL = 1;

/** AttributeProto.AttributeType values the builders emit. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
} as const;

const ELEMENT_TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};

/** The onnxruntime-style name of an element type ('float32', 'int64', …), or 'type<N>' for exotic ones. */
export function elementTypeName(code: number | undefined): string {
  if (code === undefined) return 'undefined';
  return ELEMENT_TYPE_NAMES[code] ?? `type${code}`;
}

/** An int64 field as a JS number; throws when it does not fit exactly (a tensor that big is not ours to handle). */
export function int64ToNumber(value: Int64 | undefined | null, what: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'number' ? value : value.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} does not fit a safe integer: ${String(value)}`);
  return n;
}
