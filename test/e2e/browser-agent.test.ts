/**
 * End to end: an agent in a web page trains next to a Node.js agent. A real nats-server (with its WebSocket
 * listener), a real Coordinator on the NATS transport, one Node agent over TCP and one page in headless Chromium
 * (playwright-core) running the bundled Agent (scripts/build-browser-agent.mjs): onnxruntime-web for the forward
 * passes, the WebAssembly noise kernel, and the same NatsTransport over nats.ws. Every round needs both agents;
 * at the end the page's weights hash equals the coordinator's, and the Node agent's.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Coordinator } from '../../coordinator/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { NatsTransport } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, paddingOf, until } from '../integration/fleet-fixture.js';

const CHROMIUM = process.env.MEZO_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const haveNats = natsServerPath() !== undefined;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ROUNDS = 4;
const JOB = 'browser-fleet';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };

const skipReason = !haveChromium ? `no Chromium at ${CHROMIUM}; set MEZO_CHROMIUM` : !haveNats ? 'nats-server is not installed' : '';

/** A static server for the page: fixed files and bytes by path, and onnxruntime-web's dist/ under /ort/. */
function servePage(files: Record<string, Uint8Array | string>): Promise<{ server: Server; url: string }> {
  const ortDir = join(ROOT, 'node_modules/onnxruntime-web/dist');
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: Uint8Array | string | undefined = files[path];
    if (body === undefined && path.startsWith('/ort/')) {
      const file = normalize(join(ortDir, path.slice('/ort/'.length)));
      if (file.startsWith(ortDir) && existsSync(file)) body = readFileSync(file);
    }
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': path === '/' ? TYPES['.html']! : (TYPES[extname(path)] ?? 'application/octet-stream') }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

describe.skipIf(skipReason !== '')(`a browser agent trains next to a Node agent${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let nats: NatsServer | undefined;
  let coordinator: Coordinator | undefined;
  let page: { server: Server; url: string } | undefined;
  let browser: Browser | undefined;
  let nodeAgent: Agent | undefined;
  let nodeRun: Promise<void> | undefined;
  let buildDir: string | undefined;

  afterAll(async () => {
    await browser?.close();
    await nodeAgent?.close();
    await nodeRun?.catch(() => undefined);
    await coordinator?.close();
    await nats?.stop(true);
    await new Promise((resolve) => (page ? page.server.close(resolve) : resolve(undefined)));
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  });

  it(`trains ${ROUNDS} rounds and ends with the coordinator's weights hash`, { timeout: 240_000 }, async () => {
    // The page's bundle, built from the sources as a user would (scripts/build-browser-agent.mjs).
    buildDir = mkdtempSync(join(tmpdir(), 'mezo-browser-'));
    const { browserAgentBuildOptions } = (await import(join(ROOT, 'scripts/build-browser-agent.mjs'))) as {
      browserAgentBuildOptions: (o: { outfile: string }) => Record<string, unknown>;
    };
    const esbuild = await import('esbuild');
    await esbuild.build(browserAgentBuildOptions({ outfile: join(buildDir, 'agent-page.js') }) as never);

    const f = await fixture();
    nats = await startNatsServer({ websocket: true });
    const log = UpdateLog.inMemory(logHeader(f.prepared, JOB));
    coordinator = new Coordinator({
      log,
      baseSlab: f.prepared.slab,
      padding: paddingOf(f.prepared),
      engine: noise,
      transport: new NatsTransport({ jobId: JOB, servers: nats.url }),
      options: {
        jobId: JOB,
        rounds: ROUNDS,
        // Rounds close at quorum (both agents answer); a deadline would only fail attempts on a loaded machine.
        deadlineMs: 600_000,
        heartbeatMs: 2000,
        batchSize: 32,
        strategy: { agentsPerRound: 2, seedMode: 'distinct', seedsPerAgent: 1, schedule: { lr: 4e-3 }, seed: 3 },
      },
    });
    await coordinator.listen();

    nodeAgent = makeAgent(f, new NatsTransport({ jobId: JOB, servers: nats.url }), 0);
    nodeRun = nodeAgent.run();

    const shard = f.task.agents[1]!.materialize();
    const features: number[] = [];
    for (let i = 0; i < shard.size; i++) features.push(...(shard.features(i) as Float32Array));
    const slab = f.prepared.slab;
    page = await servePage({
      '/': '<!doctype html><meta charset="utf-8"><title>mezo browser agent</title><body><script type="module" src="agent-page.js"></script></body>',
      '/favicon.ico': new Uint8Array(0),
      '/agent-page.js': readFileSync(join(buildDir, 'agent-page.js')),
      '/config.json': JSON.stringify({ natsUrl: nats.wsUrl, jobId: JOB, agentId: 'browser-1', dataSeed: 1 }),
      '/prepared.json': JSON.stringify({ manifest: f.prepared.manifest, warnings: f.prepared.warnings }),
      '/model.onnx': f.prepared.model,
      '/slab.bin': new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength),
      '/data.json': JSON.stringify({ name: 'browser-1', features, labels: Array.from(shard.labels()), featureShape: shard.featureShape, numClasses: shard.numClasses }),
      '/noise-kernel.wasm': readFileSync(join(ROOT, 'shared/noise/wasm/noise-kernel.wasm')),
    });

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const tab: Page = await browser.newPage();
    const pageErrors: string[] = [];
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    const consoleLines: string[] = [];
    tab.on('console', (message) => {
      consoleLines.push(`${message.type()}: ${message.text()}`);
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await tab.goto(`${page.url}/`);
    const status = async (): Promise<{ phase: string; version: number; noiseKernel: string; error?: string }> =>
      (await tab.evaluate('globalThis.mezoBrowserAgent?.status() ?? { phase: "none", version: -1 }')) as never;

    // Both agents must be in the fleet before the first round is drawn.
    try {
      await until(async () => {
        const s = await status();
        if (s.phase === 'failed') throw new Error(`the page's agent failed: ${s.error}`);
        return coordinator!.agentStatuses().length === 2;
      }, 60_000, 'the Node and the browser agent to join');
    } catch (err) {
      throw new Error(`${(err as Error).message}\npage: ${JSON.stringify(await status())}\nconsole: ${consoleLines.join('\n')}\nerrors: ${pageErrors.join('\n')}`);
    }
    expect((await status()).noiseKernel).toBe('wasm');

    const report = await coordinator.run().catch(async (err: Error) => {
      throw new Error(`${err.message}\npage: ${JSON.stringify(await status())}\nagents: ${JSON.stringify(coordinator!.agentStatuses())}\nconsole: ${consoleLines.join('\n')}`);
    });
    expect(report).toMatchObject({ roundsRun: ROUNDS, version: ROUNDS, failedAttempts: 0 });
    await until(async () => (await status()).version === ROUNDS && nodeAgent!.state.version === ROUNDS, 30_000, 'both agents at the last version');

    const sha = coordinator.weightsSha256();
    expect(await tab.evaluate('globalThis.mezoBrowserAgent.weightsSha256()')).toBe(sha);
    expect(await nodeAgent.backend!.sha256()).toBe(sha);
    expect((await status()) as unknown).toMatchObject({ headHash: coordinator.log.headHash });
    // The page did its share: it answered tasks in the rounds it was drawn for.
    const browserStats = coordinator.agentStatus('browser-1')!.stats;
    expect(browserStats.tasks).toBe(ROUNDS);
    expect(browserStats.rejected).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
