/**
 * A browser agent: the project's Agent (edge-agent/agent.ts), unchanged, in a web page. Bundled for the browser
 * by scripts/build-browser-agent.mjs, which swaps only platform modules: onnxruntime-web (WebAssembly) for
 * onnxruntime-node, nats.ws (WebSocket) for the nats package's TCP client, and small stand-ins for node:crypto,
 * the noise module (WebAssembly kernel, no addon) and the proto loader. The NATS transport is the same
 * NatsTransport, opened through nats.ws's connect against nats-server's websocket listener.
 *
 * The page serves everything from its own origin: config.json (where to connect, which agent it is), the
 * prepared model (prepared.json, model.onnx, slab.bin), its shard of the data (data.json), the noise kernel
 * (noise-kernel.wasm) and onnxruntime-web's .wasm files (under ort/). It publishes its progress on
 * `globalThis.mezoBrowserAgent` and in data- attributes of <body>, for people and for tests.
 *
 * The weights live in the WebAssembly noise kernel's memory (weightsFor), so the kernel perturbs them in place.
 */
import { connect as wsConnect } from 'nats.ws';
import * as ort from 'onnxruntime-web/wasm';
import { LocalDataset } from '../../shared/data/dataset.js';
import type { Manifest, PreparedModel } from '../../shared/model/index.js';
import { instantiateWasmKernel, type WasmNoiseKernel } from '../../shared/noise/wasm-kernel.js';
import type { NatsConnectFn } from '../../shared/transport/nats/connect.js';
import { NatsTransport } from '../../shared/transport/nats/transport.js';
import { Agent } from '../agent.js';
import { InProcessBackend } from '../mezo-backend.js';
import { noise, useKernel } from './noise.js';

/** What config.json holds. */
export interface BrowserAgentConfig {
  /** nats-server's websocket listener, ws://host:port. */
  natsUrl: string;
  jobId: string;
  agentId: string;
  /** Seeds the agent's batch order. */
  dataSeed: number;
  /** NATS subject prefix (default the transport's). */
  subjectPrefix?: string;
}

/** What data.json holds: one agent's examples, row-major float32 features. */
export interface BrowserAgentData {
  name: string;
  features: number[];
  labels: number[];
  featureShape: number[];
  numClasses: number;
}

interface Status {
  phase: 'loading' | 'running' | 'ended' | 'failed';
  error?: string;
  version: number;
  tasksDone: number;
  noiseKernel: string;
  /** Whether the noise kernel works on the backend's weights in place (in its WebAssembly memory, no copies). */
  noiseInPlace: boolean;
  headHash?: string | undefined;
}

const status: Status = { phase: 'loading', version: 0, tasksDone: 0, noiseKernel: 'js', noiseInPlace: false };
let agent: Agent | undefined;

function publish(): void {
  if (agent) {
    status.version = agent.state.version;
    status.tasksDone = agent.state.tasksDone;
    status.headHash = agent.state.headHash;
  }
  const doc = (globalThis as { document?: { body?: { dataset: Record<string, string> }; getElementById(id: string): { textContent: string } | null } }).document;
  const line = doc?.getElementById('phase');
  if (line) line.textContent = `${status.phase}, version ${status.version}, ${status.tasksDone} tasks, noise ${status.noiseKernel}${status.error ? `: ${status.error.split('\n')[0]}` : ''}`;
  const body = doc?.body;
  if (body) {
    body.dataset.phase = status.phase;
    body.dataset.version = String(status.version);
    body.dataset.tasks = String(status.tasksDone);
  }
}

async function fetchOk(path: string): Promise<Response> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${response.statusText}`);
  return response;
}

function checkConfig(value: unknown): BrowserAgentConfig {
  const c = value as Partial<BrowserAgentConfig> | null;
  if (typeof c !== 'object' || c === null) throw new TypeError('config.json must hold an object');
  if (typeof c.natsUrl !== 'string' || !/^wss?:\/\//.test(c.natsUrl)) throw new TypeError('config.json: natsUrl must be a ws:// or wss:// URL');
  if (typeof c.jobId !== 'string' || c.jobId === '') throw new TypeError('config.json: jobId must be a non-empty string');
  if (typeof c.agentId !== 'string' || c.agentId === '') throw new TypeError('config.json: agentId must be a non-empty string');
  if (!Number.isSafeInteger(c.dataSeed) || c.dataSeed! < 0) throw new TypeError('config.json: dataSeed must be a non-negative integer');
  return c as BrowserAgentConfig;
}

async function start(): Promise<void> {
  const config = checkConfig(await (await fetchOk('config.json')).json());
  // onnxruntime-web loads its own .wasm next to the page; one thread (threads need cross-origin isolation).
  ort.env.wasm.wasmPaths = new URL('ort/', (globalThis as unknown as { location: { href: string } }).location.href).href;
  ort.env.wasm.numThreads = 1;
  let wasmKernel: WasmNoiseKernel | undefined;
  try {
    wasmKernel = await instantiateWasmKernel(await (await fetchOk('noise-kernel.wasm')).arrayBuffer());
    useKernel(wasmKernel);
  } catch (err) {
    // The TypeScript kernel gives the same bits, only slower.
    console.warn(`noise: WebAssembly kernel unavailable, using TypeScript: ${(err as Error).message}`);
  }
  status.noiseKernel = noise.kind;

  const [info, model, slab, data] = await Promise.all([
    fetchOk('prepared.json').then((r) => r.json() as Promise<{ manifest: Manifest; warnings: string[] }>),
    fetchOk('model.onnx').then(async (r) => new Uint8Array(await r.arrayBuffer())),
    fetchOk('slab.bin').then(async (r) => new Float32Array(await r.arrayBuffer())),
    fetchOk('data.json').then((r) => r.json() as Promise<BrowserAgentData>),
  ]);
  const prepared: PreparedModel = { model, slab, manifest: info.manifest, warnings: info.warnings };
  const weights = weightsFor(prepared, wasmKernel);
  const dataset = new LocalDataset({
    name: data.name,
    features: Float32Array.from(data.features),
    labels: Int32Array.from(data.labels),
    featureShape: data.featureShape,
    numClasses: data.numClasses,
  });
  const transport = new NatsTransport({
    jobId: config.jobId,
    servers: config.natsUrl,
    connect: wsConnect as unknown as NatsConnectFn,
    ...(config.subjectPrefix ? { subjectPrefix: config.subjectPrefix } : {}),
  });
  agent = new Agent({
    agentId: config.agentId,
    transport,
    prepared,
    createBackend: async (distribution, rank) => {
      const held = weights.take();
      let backend: InProcessBackend;
      try {
        backend = await InProcessBackend.create(prepared, noise, {
          distribution,
          ...(rank !== undefined ? { rank } : {}),
          slab: held.slab,
          restore: 'reload',
          checkpointInMemory: true,
          intraOpThreads: 1,
        });
      } catch (err) {
        held.release();
        throw err;
      }
      status.noiseInPlace = wasmKernel?.inPlace(held.slab) ?? false;
      // The slab goes back to the page once the agent has closed this backend (a job ended).
      const close = backend.close.bind(backend);
      backend.close = async () => {
        try {
          await close();
        } finally {
          held.release();
        }
      };
      return backend;
    },
    data: dataset,
    dataSeed: config.dataSeed,
    capabilities: { cores: 1, memoryBytes: 1 << 30, noiseImpl: noise.kind },
    reconnect: { initialMs: 50, maxMs: 1000 },
    onJobEnd: 'wait',
  });
  status.phase = 'running';
  const timer = setInterval(publish, 100);
  try {
    await agent.run();
    status.phase = 'ended';
  } finally {
    clearInterval(timer);
    publish();
  }
}

/**
 * The weights a new backend trains in place, each time a copy of the prepared base. With the WebAssembly kernel
 * they live in the kernel's memory, so perturb and accumulate work on them where they are instead of copying them
 * in and out of the module on every call; onnxruntime-web reads them through tensors over the same view, as over
 * any Float32Array. One such slab, allocated once: a second allocation would grow the module's memory and detach
 * the first. The agent holds one backend at a time (it closes a job's backend before it builds the next); should
 * two ever overlap, the second gets a plain array, which the kernel copies through: the same bits, slower.
 */
function weightsFor(prepared: PreparedModel, kernel: WasmNoiseKernel | undefined): { take(): { slab: Float32Array; release(): void } } {
  let inModule: Float32Array | undefined;
  let lent = false;
  return {
    take() {
      if (kernel && !lent) {
        inModule ??= kernel.allocateSlab(prepared.slab.length);
        inModule.set(prepared.slab);
        lent = true;
        let returned = false;
        return {
          slab: inModule,
          // Once per loan: a second close of the same backend must not hand back a slab lent out again since.
          release: () => {
            if (!returned) lent = false;
            returned = true;
          },
        };
      }
      return { slab: prepared.slab.slice(), release: () => undefined };
    },
  };
}

/** For tests and the console: the agent's state and its weights' SHA-256. */
const api = {
  status: (): Status => ({ ...status }),
  weightsSha256: async (): Promise<string | undefined> => agent?.backend?.sha256(),
  stop: (): void => agent?.stop(),
};
(globalThis as { mezoBrowserAgent?: typeof api }).mezoBrowserAgent = api;

start().catch((err: unknown) => {
  status.phase = 'failed';
  status.error = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
  publish();
  console.error(`browser agent failed: ${status.error}`);
});
