#!/usr/bin/env node
// Bundles the browser agent (edge-agent/browser/agent-page.ts) with esbuild into one ES module, by default
// dist/browser/agent-page.js; tests and `mezo`-less demos serve it next to a page (see docs/deploy.md).
//
//   node scripts/build-browser-agent.mjs [--outfile path] [--minify]
//
// The agent's own modules are bundled unchanged. Only platform modules are swapped, each for a browser
// counterpart with the same API:
//   onnxruntime-node              -> onnxruntime-web/wasm (WebAssembly execution provider)
//   nats                          -> nats.ws (the same client over a WebSocket)
//   node:crypto                   -> edge-agent/browser/node-crypto.ts (SHA-256 and HMAC, random bytes)
//   shared/noise/index.ts         -> edge-agent/browser/noise.ts (WebAssembly kernel, no native addon)
//   shared/transport/proto.ts     -> edge-agent/browser/proto.ts (the .proto descriptor embedded at build time)
//   shared/logger.ts              -> edge-agent/browser/logger.ts (pino's browser build, to the console)
//   other Node built-ins, gRPC    -> edge-agent/browser/node-unavailable.cjs (throws if ever called; reads
//                                    only the package files embedded here, such as the ONNX schema)
// and Buffer comes from the `buffer` package.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// The package's require entry is dist/ort.node.min.js; its WebAssembly-only browser build sits next to it.
const ORT_WEB_WASM = join(dirname(require.resolve('onnxruntime-web')), 'ort.wasm.bundle.min.mjs');

const NODE_BUILTINS = new Set([
  'assert', 'child_process', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2', 'https', 'module', 'net', 'os', 'path',
  'perf_hooks', 'process', 'readline', 'stream', 'stream/web', 'tls', 'url', 'util', 'v8', 'worker_threads', 'zlib',
]);

/** Package files modules read at run time (shared/model/onnx-codec.ts: the ONNX schema), served from the bundle. */
const EMBEDDED_FILES = ['proto/onnx/onnx-subset.proto'];

/** protobufjs's JSON form of the protocol's .proto files, for edge-agent/browser/proto.ts. */
function protoJson() {
  const protobuf = require('protobufjs');
  const rootNs = new protobuf.Root();
  const protoDir = join(root, 'proto');
  rootNs.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(protoDir, target));
  // Field names as proto-loader gives them with LOADER_OPTIONS (keepCase unset: camelCase).
  rootNs.loadSync(['mezo/v1/coordinator.proto', 'mezo/v1/health.proto'], { keepCase: false });
  return rootNs.toJSON({ keepComments: false });
}

export function browserAgentBuildOptions({ outfile, minify = false } = {}) {
  const browserDir = join(root, 'edge-agent/browser');
  const swaps = {
    [join(root, 'shared/noise/index.ts')]: join(browserDir, 'noise.ts'),
    [join(root, 'shared/transport/proto.ts')]: join(browserDir, 'proto.ts'),
    [join(root, 'shared/logger.ts')]: join(browserDir, 'logger.ts'),
  };
  const plugin = {
    name: 'mezo-browser',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.replace(/^node:/, '');
        if (args.path === 'node:crypto' || args.path === 'crypto') return { path: join(browserDir, 'node-crypto.ts') };
        // The page imports onnxruntime-web/wasm (the WebAssembly execution provider only); the model code's
        // onnxruntime-node import gets the very same module, so both share one environment (ort.env).
        if (args.path === 'onnxruntime-node' || args.path === 'onnxruntime-web/wasm') return { path: ORT_WEB_WASM };
        if (args.path === 'nats') return { path: require.resolve('nats.ws') };
        if (args.path === '@grpc/grpc-js') return { path: join(browserDir, 'node-unavailable.cjs') };
        if (args.path.startsWith('node:') || (NODE_BUILTINS.has(bare) && args.kind !== 'entry-point' && !args.path.startsWith('.'))) {
          if (bare === 'buffer') return undefined;
          return { path: join(browserDir, 'node-unavailable.cjs') };
        }
        // Project modules swapped for their browser counterparts (imports name them with .js, files are .ts).
        if (args.path.startsWith('.') && args.resolveDir) {
          const target = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
          if (swaps[target]) return { path: swaps[target] };
        }
        return undefined;
      });
    },
  };
  return {
    entryPoints: [join(browserDir, 'agent-page.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: outfile ?? join(root, 'dist/browser/agent-page.js'),
    minify,
    sourcemap: false,
    logLevel: 'warning',
    // Node globals the shared modules use (Buffer, setImmediate: globals.ts); process only where they read it.
    inject: [join(browserDir, 'globals.ts')],
    define: {
      MEZO_PROTO_JSON: JSON.stringify(protoJson()),
      MEZO_EMBEDDED_FILES: JSON.stringify(Object.fromEntries(EMBEDDED_FILES.map((file) => [file, readFileSync(join(root, file), 'utf8')]))),
      'process.env.MEZO_LOG_LEVEL': '"warn"',
      'process.env.NODE_ENV': '"production"',
      'process.pid': '0',
    },
    plugins: [plugin],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outfile: { type: 'string' }, minify: { type: 'boolean', default: false } } });
  const esbuild = await import('esbuild');
  const options = browserAgentBuildOptions({ outfile: values.outfile, minify: values.minify });
  const result = await esbuild.build({ ...options, metafile: true });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  console.log(`${options.outfile}: ${bytes} bytes`);
}
