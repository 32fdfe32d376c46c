/**
 * End to end: `mezo simulate` (the library behind it) runs a fleet of virtual agents with its dashboard served,
 * while headless Chromium, driven by playwright-core, watches. The page signs in with the operator token, must
 * see the round counter and the charts' series grow across rounds, and is screenshot at laptop and phone widths
 * into bench-results/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { runSimulation, type ReadyFleet } from '../../simulation/simulate.js';
import { until } from '../integration/fleet-fixture.js';

const CHROMIUM = process.env.MEZO_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ROUNDS = 40;
const AGENTS = 12;
const TOKEN = 'dashboard-e2e-token';
const OUT = join(process.cwd(), 'bench-results');

/**
 * Polls an expression in the page until it is truthy. page.evaluate runs it through the debugger protocol,
 * which the page's content security policy allows; waitForFunction would eval() it in the page, which CSP
 * (rightly) refuses.
 */
async function waitInPage(page: Page, expression: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting in the page for: ${expression}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!haveChromium)(`dashboard of a running simulation in headless Chromium${haveChromium ? '' : ` (skipped: no Chromium at ${CHROMIUM}; set MEZO_CHROMIUM)`}`, () => {
  it('signs in, sees the charts update across rounds, and saves screenshots', async () => {
    const { chromium } = await import('playwright-core');
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const pageErrors: string[] = [];
    const watch = (page: Page): void => {
      page.on('pageerror', (err) => pageErrors.push(err.message));
      page.on('console', (message) => {
        if (message.type() === 'error') pageErrors.push(message.text());
      });
    };
    const seen = new Set<number>();
    let context: BrowserContext | undefined;
    let page: Page | undefined;
    let watching = true;
    let polling: Promise<void> = Promise.resolve();
    const readRounds = async (): Promise<number> => Number(await page!.evaluate('document.body.dataset.rounds'));
    try {
      const report = await runSimulation(
        {
          agents: AGENTS,
          agentsPerRound: 4,
          rounds: ROUNDS,
          evalEvery: 10,
          // Shared seeds (the default with median): several agents per seed, so sign agreement has a value.
          aggregation: 'median',
          // Answers leave 10–20 ms late, so the run lasts long enough for the page to redraw many times.
          faults: { straggler: 'uniform:10:20' },
          dashboardListen: '127.0.0.1:0',
          dashboardToken: TOKEN,
        },
        {
          onReady: async ({ dashboardUrl }: ReadyFleet) => {
            context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
            page = await context.newPage();
            // Without the token: the sign-in form, not the dashboard.
            const refused = await page.goto(`${dashboardUrl}/`);
            expect(refused!.status()).toBe(401);
            await page.fill('input[name=token]', TOKEN);
            await Promise.all([page.waitForURL(`${dashboardUrl}/`), page.click('button[type=submit]')]);
            // From here on the page must load and run without a single error.
            watch(page);
            // A fresh load of the signed-in page (goto rather than reload: the sign-in navigation may still be
            // settling, and Chromium can swap the page's renderer under a reload).
            await page.waitForLoadState('load');
            await page.goto(`${dashboardUrl}/`);
            await page.waitForSelector('#chart-loss .uplot');
            await waitInPage(page, "document.getElementById('status').textContent === 'live'");
            // The fleet starts training only when this returns, so the page watches every round arrive.
            polling = (async () => {
              while (watching) {
                seen.add(await readRounds());
                await new Promise((r) => setTimeout(r, 20));
              }
            })();
          },
          onFinished: async ({ coordinator, monitor, dashboardUrl }: ReadyFleet) => {
            watching = false;
            await polling;
            await waitInPage(page!, `document.body.dataset.rounds === '${ROUNDS}'`);
            seen.add(await readRounds());
            // The page redrew as rounds came in, not once at the end.
            const counts = [...seen].filter((n) => n > 0 && n < ROUNDS);
            expect(counts.length, `round counts the page showed: ${[...seen].sort((a, b) => a - b).join(', ')}`).toBeGreaterThanOrEqual(3);
            expect(await page!.textContent('#kpi-round')).toBe(String(ROUNDS - 1));

            // Every chart holds the run's data.
            await until(() => monitor.roundRows().length === ROUNDS);
            const points = await page!.evaluate<Record<string, number>>(
              "Object.fromEntries([...document.querySelectorAll('[data-chart]')].map((el) => [el.dataset.chart, Number(el.dataset.points)]))",
            );
            expect(points).toMatchObject({ loss: ROUNDS, agents: ROUNDS, bytes: ROUNDS, agreement: ROUNDS });
            expect(points.scalars).toBeGreaterThan(0);
            // Before training, every 10 rounds, and at the end.
            await waitInPage(page!, "Number(document.querySelector('[data-chart=accuracy]').dataset.points) >= 4");
            expect(await page!.locator('.uplot').count()).toBe(6);
            expect(await page!.textContent('#kpi-online')).toBe(`${AGENTS} of ${AGENTS}`);
            expect(await page!.textContent('#kpi-agreement')).toMatch(/%$/);
            expect(await page!.textContent('#kpi-head')).toBe(`${coordinator.log.headHash.slice(0, 16)}…`);

            // No figure or label wraps onto a second line at laptop width (bytes run to tens of kB here).
            const wrapped = await page!.evaluate<string[]>(
              "[...document.querySelectorAll('.kpi .value, .kpi .label')].filter((el) => { const r = document.createRange(); r.selectNodeContents(el); " +
                "return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size > 1; }).map((el) => el.id || el.textContent)",
            );
            expect(wrapped).toEqual([]);
            // The final evaluation (after the last round) reaches the card, which says when it was measured.
            await waitInPage(page!, `document.getElementById('kpi-accuracy-note').textContent === 'after round ${ROUNDS - 1}'`);

            mkdirSync(OUT, { recursive: true });
            await page!.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });

            // Phone width: one column, nothing wider than the screen.
            const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
            const cookies = await context!.cookies();
            expect(cookies.find((c) => c.name === 'mezo_token')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
            await phone.addCookies(cookies);
            const small = await phone.newPage();
            watch(small);
            await small.goto(`${dashboardUrl}/`);
            await waitInPage(small, `document.body.dataset.rounds === '${ROUNDS}'`);
            const overflow = await small.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
            expect(overflow).toBeLessThanOrEqual(0);
            await small.screenshot({ path: join(OUT, 'dashboard-phone.png'), fullPage: true });
            await phone.close();
          },
        },
      );
      expect(report.rounds).toBe(ROUNDS);
      expect(pageErrors).toEqual([]);
    } finally {
      watching = false;
      await context?.close();
      await browser.close();
    }
  }, 180_000);
});
