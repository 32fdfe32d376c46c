/**
 * Serves a browser agent (edge-agent/browser/agent-page.ts) for one agent of a job: builds the page's bundle
 * with esbuild from the sources (scripts/build-browser-agent.mjs), and serves it on loopback with everything the
 * page fetches from its own origin: its config (NATS WebSocket URL, job, agent), the prepared model, the agent's
 * examples, the WebAssembly noise kernel and onnxruntime-web's .wasm files. Opening the URL in a browser starts
 * the agent. Used by the browser test and examples/browser-agent.mjs; needs a source checkout (the bundle is
 * built from edge-agent/browser/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FeatureArray, LocalDataset } from '../shared/data/index.js';
import type { PreparedModel } from '../shared/model/index.js';

export interface BrowserAgentPageOptions {
  /** nats-server's WebSocket listener as the browser reaches it, ws:// or wss://. */
  natsWsUrl: string;
  jobId: string;
  agentId: string;
  /** Seeds the agent's batch order. */
  dataSeed: number;
  prepared: PreparedModel;
  /** The agent's examples (float32 features). */
  data: LocalDataset<FeatureArray>;
  /** Listen address (default 127.0.0.1, a free port). */
  host?: string;
  port?: number;
}

export interface BrowserAgentPage {
  /** http://host:port/ : open it to start the agent. */
  readonly url: string;
  close(): Promise<void>;
}

/** The package root: two levels up in the source tree, three in dist/. */
function packageRoot(): string {
  for (const rel of ['../', '../../']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error('browser page: package root not found');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

const INDEX = `<!doctype html>
<meta charset="utf-8">
<title>mezo browser agent</title>
<body>
<p>mezo browser agent: <span id="phase">loading</span>. The page trains while it stays open.</p>
<script type="module" src="agent-page.js"></script>
</body>`;

/** Builds the bundle into memory (esbuild, the build script's options). */
async function buildBundle(root: string): Promise<Uint8Array> {
  const script = (await import(pathToFileURL(join(root, 'scripts/build-browser-agent.mjs')).href)) as {
    browserAgentBuildOptions: (options: { outfile: string }) => Record<string, unknown>;
  };
  const esbuild = await import('esbuild');
  const result = await esbuild.build({ ...(script.browserAgentBuildOptions({ outfile: 'agent-page.js' }) as object), write: false });
  return result.outputFiles[0]!.contents;
}

function dataJson(data: LocalDataset<FeatureArray>, name: string): string {
  if (data.dtype !== 'float32') throw new TypeError('browser page: data must have float32 features (the page builds a Float32Array)');
  const shard = data.materialize();
  const features: number[] = [];
  for (let i = 0; i < shard.size; i++) for (const v of shard.features(i) as Float32Array) features.push(v);
  return JSON.stringify({ name, features, labels: Array.from(shard.labels()), featureShape: shard.featureShape, numClasses: shard.numClasses });
}

export async function serveBrowserAgentPage(options: BrowserAgentPageOptions): Promise<BrowserAgentPage> {
  if (!/^wss?:\/\//.test(options.natsWsUrl)) throw new TypeError(`browser page: natsWsUrl must be a ws:// or wss:// URL, got ${JSON.stringify(options.natsWsUrl)}`);
  if (!Number.isSafeInteger(options.dataSeed) || options.dataSeed < 0) throw new RangeError(`browser page: dataSeed must be a non-negative integer, got ${options.dataSeed}`);
  const root = packageRoot();
  const ortDir = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-web')));
  const slab = options.prepared.slab;
  const files: Record<string, Uint8Array | string> = {
    '/': INDEX,
    '/favicon.ico': new Uint8Array(0),
    '/agent-page.js': await buildBundle(root),
    '/config.json': JSON.stringify({ natsUrl: options.natsWsUrl, jobId: options.jobId, agentId: options.agentId, dataSeed: options.dataSeed }),
    '/prepared.json': JSON.stringify({ manifest: options.prepared.manifest, warnings: options.prepared.warnings }),
    '/model.onnx': options.prepared.model,
    '/slab.bin': new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength),
    '/data.json': dataJson(options.data, options.agentId),
    '/noise-kernel.wasm': readFileSync(join(root, 'shared/noise/wasm/noise-kernel.wasm')),
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    let body = files[path];
    if (body === undefined && path.startsWith('/ort/')) {
      const file = normalize(join(ortDir, path.slice('/ort/'.length)));
      if (file.startsWith(`${ortDir}/`) && existsSync(file)) body = readFileSync(file);
    }
    if (body === undefined || req.method !== 'GET') {
      res.writeHead(body === undefined ? 404 : 405).end();
      return;
    }
    const type = path === '/' ? TYPES['.html']! : (TYPES[extname(path)] ?? 'application/octet-stream');
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
