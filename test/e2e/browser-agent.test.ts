/**
 * End to end: an agent in a web page trains next to a Node.js agent. A real nats-server (with its WebSocket
 * listener), a real Coordinator on the NATS transport, one Node agent over TCP and one page in headless Chromium
 * (playwright-core) running the bundled Agent (scripts/build-browser-agent.mjs): onnxruntime-web for the forward
 * passes, the WebAssembly noise kernel, and the same NatsTransport over nats.ws. Every round needs both agents;
 * at the end the page's weights hash equals the coordinator's, and the Node agent's.
 */
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Coordinator } from '../../coordinator/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { LogSigner, UpdateLog } from '../../shared/log/index.js';
import { noise } from '../../shared/noise/index.js';
import { NatsTransport } from '../../shared/transport/index.js';
import { serveBrowserAgentPage, type BrowserAgentPage } from '../../simulation/browser-page.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { fixture, logHeader, makeAgent, paddingOf, until } from '../integration/fleet-fixture.js';

const CHROMIUM = process.env.MEZO_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const haveNats = natsServerPath() !== undefined;
const ROUNDS = 4;
const JOB = 'browser-fleet';

const skipReason = !haveChromium ? `no Chromium at ${CHROMIUM}; set MEZO_CHROMIUM` : !haveNats ? 'nats-server is not installed' : '';

describe.skipIf(skipReason !== '')(`a browser agent trains next to a Node agent${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let nats: NatsServer | undefined;
  let coordinator: Coordinator | undefined;
  let page: BrowserAgentPage | undefined;
  let browser: Browser | undefined;
  let nodeAgent: Agent | undefined;
  let nodeRun: Promise<void> | undefined;

  afterAll(async () => {
    await browser?.close();
    await nodeAgent?.close();
    await nodeRun?.catch(() => undefined);
    await coordinator?.close();
    await nats?.stop(true);
    await page?.close();
  });

  it(`trains ${ROUNDS} rounds and ends with the coordinator's weights hash`, { timeout: 240_000 }, async () => {
    const f = await fixture();
    nats = await startNatsServer({ websocket: true });
    // A signed log, as mezo coordinator keeps it: the page checks every update with the log's Ed25519 key.
    const log = UpdateLog.inMemory(logHeader(f.prepared, JOB), { signer: LogSigner.generate() });
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

    // The page's bundle is built from the sources as `npm run build:browser` builds it.
    page = await serveBrowserAgentPage({ natsWsUrl: nats.wsUrl!, jobId: JOB, agentId: 'browser-1', dataSeed: 1, prepared: f.prepared, data: f.task.agents[1]! });
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
    await tab.goto(page.url);
    const status = async (): Promise<{ phase: string; version: number; noiseKernel: string; noiseInPlace?: boolean; error?: string }> =>
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
    // The page's weights live in the kernel's memory: the noise is applied in place, with no copies.
    await until(async () => (await status()).noiseInPlace === true, 30_000, 'the page trains on a slab in the wasm kernel memory');

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
