import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerReportCommand } from '../../../cli/report-command.js';
import { RunMonitor } from '../../../coordinator/run-monitor.js';
import { CHART_NAMES, reportCharts } from '../../../coordinator/report/render-report.js';
import { strokeText, strokeTextWidth } from '../../../coordinator/report/stroke-font.js';
import { niceTicks } from '../../../coordinator/report/svg-charts.js';
import type { RunRecord } from '../../../coordinator/run-record.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { scriptedAgent, scriptedCoordinator } from './scripted-fleet.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const mezo = (...args: string[]) => runCli([registerReportCommand], ...args);

/** The <text> labels of an SVG drawn in 'text' mode, with their anchor point. */
function texts(svg: string): Array<{ x: number; y: number; text: string }> {
  return [...svg.matchAll(/<text x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)<\/text>/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), text: m[3]! }));
}

/** The tick labels of a chart's x axis (drawn 18 px below the plot, whose bottom is 52 px above the 400 px frame's). */
const xTicks = (svg: string): string[] => texts(svg).filter((t) => t.y === 400 - 52 + 18).map((t) => t.text);
/** The tick labels of its y axis (right-aligned 6 px left of the plot, which starts at 78 px). */
const yTicks = (svg: string): string[] => texts(svg).filter((t) => t.x === 78 - 6).map((t) => t.text);

/** Width and height from a PNG's IHDR chunk (right after the signature). */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('mezo report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-report-'));
  const recordPath = join(dir, 'run.json');
  let record: RunRecord;

  beforeAll(async () => {
    // A real run: a coordinator, three agents, six rounds, two evaluations.
    const transport = new InMemoryTransport();
    const coordinator = scriptedCoordinator(transport, { rounds: 6, strategy: { agentsPerRound: 3, seedMode: 'shared', seedsPerAgent: 4 } }, 'report-job');
    const monitor = new RunMonitor({ coordinator, fleetIntervalMs: 0 });
    await coordinator.listen();
    await Promise.all([scriptedAgent(transport, 'a1', 1), scriptedAgent(transport, 'a2', -1), scriptedAgent(transport, 'a3', 1)]);
    monitor.recordEvaluation(-1, { accuracy: 0.62, loss: 1.1 });
    await coordinator.run();
    monitor.recordEvaluation(5, { accuracy: 0.81, loss: 0.7 });
    monitor.finish();
    await coordinator.close();
    record = await monitor.writeRunRecord(recordPath);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a self-contained index.html and a valid PNG per chart', async () => {
    const out = join(dir, 'report');
    const result = await mezo('report', recordPath, '--out', out);
    expect(result.error).toBeUndefined();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(join(out, 'index.html'));
    for (const name of CHART_NAMES) {
      const png = readFileSync(join(out, `${name}.png`));
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE), name).toBe(true);
      expect(pngSize(png), name).toEqual({ width: 1600, height: 800 });
      // A chart with axes, labels and lines, not a blank page.
      expect(png.length, name).toBeGreaterThan(15_000);
    }
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)).toHaveLength(CHART_NAMES.length);
    expect(html).toContain('report-job');
    expect(html).toContain('62.0 % → 81.0 %');
    // Self-contained: no scripts, nothing fetched from elsewhere.
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
  });

  it('defaults the output folder to <name>-report next to the record and can print JSON', async () => {
    const result = await mezo('report', recordPath, '--json');
    expect(result.exitCode).toBe(0);
    const output = JSON.parse(result.stdout) as { dir: string; pngs: Record<string, string> };
    expect(output.dir).toBe(join(dir, 'run-report'));
    expect(Object.keys(output.pngs).sort()).toEqual([...CHART_NAMES].sort());
  });

  it('draws PNG text as paths (no fonts needed) and HTML text as <text>', () => {
    const paths = reportCharts(record, 'paths');
    const text = reportCharts(record, 'text');
    for (const name of CHART_NAMES) {
      expect(paths[name], name).not.toMatch(/<text/);
      expect(text[name], name).toMatch(/<text/);
    }
    expect(strokeText('Round 12', 0, 0, { size: 16 })).toMatch(/^<path /);
    expect(strokeTextWidth('abc', 8)).toBe(16);
    expect(niceTicks(0, 1, 5).ticks).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
  });

  it('explains what a chart cannot show, keeps coinciding lines visible and counts in whole numbers', () => {
    // The same run as if its seeds had been distinct (no sign agreement) and nothing had been evaluated.
    const bare: RunRecord = { ...record, evaluations: [], rounds: record.rounds.map((r) => ({ ...r, signAgreement: null })) };
    const charts = reportCharts(bare, 'text');
    // Agreement: no orange line, and the legend says why instead of keying a line that is not there.
    expect(charts.agreement).not.toMatch(/<path d="[^"]*" fill="none" stroke="#ea580c"/);
    expect(texts(charts.agreement).map((t) => t.text)).toContain('sign agreement: n/a, every seed had one agent (distinct seeds)');
    // Accuracy: says there was no evaluation, and its x axis is the run's rounds in distinct whole numbers.
    expect(texts(charts.accuracy).map((t) => t.text)).toEqual(
      expect.arrayContaining(['no held-out evaluation in this run', 'accuracy: none (mezo coordinator --eval-every N evaluates)']),
    );
    const ticks = xTicks(charts.accuracy);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const tick of ticks) expect(Number(tick), tick).toSatisfy(Number.isInteger);
    expect(Number(ticks[0])).toBeGreaterThanOrEqual(-1);
    expect(Number(ticks.at(-1))).toBeLessThanOrEqual(5);
    expect(texts(charts.loss).map((t) => t.text)).toContain('held-out: none (no evaluation in this run)');

    // Agents: every sampled agent answered, so those lines coincide; the one drawn first must be wider.
    const lines = [...charts.agents.matchAll(/<path d="([^"]*)" fill="none" stroke="(#[0-9a-f]+)" stroke-width="([\d.]+)"/g)].map((m) => ({
      d: m[1]!,
      color: m[2]!,
      width: Number(m[3]),
    }));
    expect(lines).toHaveLength(4);
    let coinciding = 0;
    lines.forEach((under, i) =>
      lines.slice(i + 1).forEach((over) => {
        if (under.d !== over.d) return;
        coinciding++;
        expect(under.width, `${under.color} under ${over.color}`).toBeGreaterThan(over.width);
      }),
    );
    expect(coinciding).toBeGreaterThan(0);
    for (const tick of yTicks(charts.agents)) expect(Number(tick), tick).toSatisfy(Number.isInteger);

    // Scalars: the y axis counts agents × seeds; with a few values per bin, no 0.5 ticks.
    const counts = yTicks(charts.scalars);
    expect(counts.length).toBeGreaterThanOrEqual(2);
    for (const tick of counts) expect(Number(tick), tick).toSatisfy(Number.isInteger);
  });

  it('refuses an invalid record with exit code 1 and names the field', async () => {
    const bad = JSON.parse(readFileSync(recordPath, 'utf8')) as { summary: Record<string, unknown> };
    bad.summary.bytesUp = -5;
    const badPath = join(dir, 'bad.json');
    writeFileSync(badPath, JSON.stringify(bad));
    const result = await mezo('report', badPath, '--out', join(dir, 'bad-report'));
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/bad\.json: summary\.bytesUp: /);
    writeFileSync(badPath, '{ not json');
    expect((await mezo('report', badPath)).stderr).toMatch(/not JSON/);
    expect((await mezo('report', join(dir, 'missing.json'))).stderr).toMatch(/cannot be read/);
  });
});
