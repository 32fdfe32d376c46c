/**
 * Loads proto/mezo/v1 (and the standard grpc.health.v1) exactly once per process. 64-bit integers decode as
 * decimal strings (seeds stay lossless), enums as their names, unset fields as their defaults, and each oneof
 * gains a `body` field naming the member that is set.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ relative to this module in the source tree and in the compiled one (dist/shared/transport). */
const PROTO_DIR_CANDIDATES = ['../../proto', '../../../proto'];

export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

export function protoDir(): string {
  for (const rel of PROTO_DIR_CANDIDATES) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}/mezo/v1/coordinator.proto`)) return dir;
  }
  throw new Error(`proto/mezo/v1/coordinator.proto was not found next to ${import.meta.url}`);
}

export interface LoadedProtocol {
  coordinator: grpc.ServiceClientConstructor;
  health: grpc.ServiceClientConstructor;
}

let loaded: LoadedProtocol | undefined;
const requestSizes = new WeakMap<object, number>();

/** Encoded size of a request message the server decoded (0 when unknown). */
export function receivedBytes(decoded: unknown): number {
  return typeof decoded === 'object' && decoded !== null ? (requestSizes.get(decoded) ?? 0) : 0;
}

export function loadProtocol(): LoadedProtocol {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(['mezo/v1/coordinator.proto', 'mezo/v1/health.proto'], {
    ...LOADER_OPTIONS,
    includeDirs: [protoDir()],
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    mezo: { v1: { Coordinator: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  // The server hands responses over already serialized (so it can count their bytes, and a broadcast encodes its
  // message once for every stream): a Buffer passes through the serializer unchanged. Each request object
  // remembers its encoded size for the same accounting.
  for (const method of Object.values(root.mezo.v1.Coordinator.service)) {
    const serialize = method.responseSerialize;
    method.responseSerialize = (value: unknown): Buffer => (Buffer.isBuffer(value) ? value : serialize(value));
    const deserialize = method.requestDeserialize;
    method.requestDeserialize = (bytes: Buffer): unknown => {
      const decoded = deserialize(bytes);
      if (typeof decoded === 'object' && decoded !== null) requestSizes.set(decoded, bytes.length);
      return decoded;
    };
  }
  loaded = { coordinator: root.mezo.v1.Coordinator, health: root.grpc.health.v1.Health };
  return loaded;
}
