/**
 * The dashboard of a run with nothing to evaluate and nothing to agree on (a coordinator with evaluation off,
 * distinct seeds: every agent its own seed), in headless Chromium: every card and chart must say why it is
 * empty, every line of the agents chart must be visible though two of them coincide, and no figure may wrap at
 * 1280 px. Saves bench-results/dashboard-no-eval.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { CoordinatorMetrics } from '../../coordinator/metrics.js';
import { RunMonitor } from '../../coordinator/run-monitor.js';
import { serveDashboard } from '../../coordinator/dashboard/server.js';
import { InMemoryTransport } from '../../shared/transport/index.js';
import { scriptedAgent, scriptedCoordinator } from '../unit/dashboard/scripted-fleet.js';

const CHROMIUM = process.env.MEZO_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ROUNDS = 12;
const OUT = join(process.cwd(), 'bench-results');

async function waitInPage(page: Page, expression: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting in the page for: ${expression}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Per series of a chart: its legend label and how many canvas pixels carry exactly its stroke colour (the
 * colour read from its legend marker, alpha included). A line hidden under another has (next to) none.
 */
const VISIBLE_PIXELS = String.raw`(() => {
  const card = document.getElementById('chart-agents');
  const canvas = card.querySelector('canvas');
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  const parse = (css) => {
    const m = css.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
    return [Number(m[1]), Number(m[2]), Number(m[3]), Math.round(255 * (m[4] === undefined ? 1 : Number(m[4])))];
  };
  return [...card.querySelectorAll('.u-legend .u-series')].filter((entry) => entry.querySelector('.u-marker')).map((entry) => {
    const colour = parse(getComputedStyle(entry.querySelector('.u-marker')).borderLeftColor);
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i + 3] - colour[3]) <= 12 && [0, 1, 2].every((k) => Math.abs(data[i + k] - colour[k]) <= 8)) count++;
    }
    return { label: entry.textContent.trim(), colour, count };
  });
})()`;

/** Texts on the page that take more than one line (a figure or label that wraps). */
const WRAPPED = String.raw`[...document.querySelectorAll('.kpi .value, .kpi .label')].filter((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return el.textContent.trim() !== '' && new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
}).map((el) => el.id || el.textContent)`;

describe.skipIf(!haveChromium)(`the dashboard explains what it cannot show${haveChromium ? '' : ` (skipped: no Chromium at ${CHROMIUM})`}`, () => {
  it('says why accuracy and sign agreement are missing, keeps coinciding lines visible, wraps no figure', async () => {
    const transport = new InMemoryTransport();
    const coordinator = scriptedCoordinator(transport, { rounds: ROUNDS, strategy: { agentsPerRound: 2, seedMode: 'distinct' } }, 'no-eval');
    const metrics = new CoordinatorMetrics(coordinator);
    // What `mezo coordinator --eval-every 0` records.
    const monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0, config: { seedMode: 'distinct', evalEvery: 0, evalData: null, evalOff: '--eval-every 0' } });
    const server = await serveDashboard({ metrics, monitor, host: '127.0.0.1', port: 0 });
    const { chromium } = await import('playwright-core');
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const pageErrors: string[] = [];
    try {
      await coordinator.listen();
      for (const [id, sign] of [['a1', 1], ['a2', -1], ['a3', 1]] as const) await scriptedAgent(transport, id, sign);
      await coordinator.run();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(`${server.url}/`);
      await waitInPage(page, `document.body.dataset.rounds === '${ROUNDS}'`);

      // Accuracy: the card and the chart say evaluation was off and how to turn it on.
      expect(await page.textContent('#kpi-accuracy')).toBe('–');
      expect(await page.textContent('#kpi-accuracy-note')).toBe('off: --eval-every 0');
      expect(await page.isVisible('#note-accuracy')).toBe(true);
      expect(await page.textContent('#note-accuracy')).toMatch(/^No held-out evaluation in this run \(--eval-every 0\): .*--eval-every N/);
      expect(await page.textContent('#note-loss')).toBe('held-out: off: --eval-every 0');
      // Sign agreement: n/a, and why.
      expect(await page.textContent('#kpi-agreement')).toBe('n/a');
      expect(await page.textContent('#kpi-agreement-note')).toBe('one agent per seed');
      expect(await page.textContent('#note-agreement')).toMatch(/every seed was evaluated by one agent \(distinct seeds\)/);
      // The legend entries of the series with nothing to draw are switched off (uPlot greys them).
      expect(await page.evaluate("[...document.querySelectorAll('#chart-agreement .u-series.u-off, #chart-loss .u-series.u-off')].map((e) => e.textContent.trim())")).toEqual([
        'held-out',
        'sign agreement',
      ]);

      // Agents: 3 online, 2 sampled, 2 answered (coinciding), 0 dropped: all four lines show.
      const lines = await page.evaluate<Array<{ label: string; count: number }>>(VISIBLE_PIXELS);
      expect(lines.map((l) => l.label)).toEqual(['online', 'sampled', 'answered', 'dropped']);
      for (const line of lines) expect(line.count, `${line.label}: ${JSON.stringify(lines)}`).toBeGreaterThan(100);

      expect(await page.evaluate<string[]>(WRAPPED)).toEqual([]);
      mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: join(OUT, 'dashboard-no-eval.png'), fullPage: true });
      await context.close();
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
      monitor.finish();
      await server.close();
      await coordinator.close();
    }
  }, 120_000);
});
