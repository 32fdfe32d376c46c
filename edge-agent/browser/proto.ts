/**
 * The browser bundle's stand-in for shared/transport/proto.ts (scripts/build-browser-agent.mjs maps the import
 * here): the same protocol, loaded with the same options, from the .proto files' descriptor that the build script
 * embeds (a page cannot read proto/ from disk), and without gRPC itself: the codecs need only each method's
 * serializers, which proto-loader's package definition holds.
 */
import * as protoLoader from '@grpc/proto-loader';

/** Set by the bundler: protobufjs's JSON form of proto/mezo/v1/coordinator.proto and health.proto. */
declare const MEZO_PROTO_JSON: Record<string, unknown>;

export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

interface Service {
  service: protoLoader.ServiceDefinition;
}

export interface LoadedProtocol {
  coordinator: Service;
  health: Service;
}

let loaded: LoadedProtocol | undefined;

export function receivedBytes(): number {
  return 0;
}

export function protoDir(): string {
  throw new Error('a browser agent has no proto/ directory');
}

export function loadProtocol(): LoadedProtocol {
  if (loaded) return loaded;
  const definition = protoLoader.fromJSON(MEZO_PROTO_JSON, LOADER_OPTIONS);
  const service = (name: string): Service => ({ service: definition[name] as protoLoader.ServiceDefinition });
  loaded = { coordinator: service('mezo.v1.Coordinator'), health: service('grpc.health.v1.Health') };
  return loaded;
}
