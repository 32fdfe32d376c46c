/**
 * Renders a run record (run-record.ts) as a self-contained HTML page (charts inline as SVG, no scripts, no
 * external resources) and one PNG per chart. PNGs are rasterised by resvg with system fonts off: their labels
 * are stroke-font paths (stroke-font.ts), so they look the same on every machine.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { redactSecrets } from '../../shared/redact.js';
import type { RunRecord } from '../run-record.js';
import { formatBytes, histogramSvg, lineChartSvg, type TextMode } from './svg-charts.js';

export const CHART_NAMES = ['loss', 'accuracy', 'agents', 'bytes', 'scalars', 'agreement'] as const;
export type ChartName = (typeof CHART_NAMES)[number];

const pct = (v: number): string => `${(100 * v).toFixed(Math.abs(v) < 0.1 && v !== 0 ? 1 : 0)}%`;

/** The report's charts as SVG documents. */
export function reportCharts(record: RunRecord, mode: TextMode): Record<ChartName, string> {
  const rows = record.rounds;
  const per = (f: (r: (typeof rows)[number]) => number | null): Array<[number, number | null]> => rows.map((r) => [r.round, f(r)]);
  const evals = record.evaluations;
  const lastHistogram = [...rows].reverse().find((r) => r.scalars.histogram !== null);
  // With no evaluation the accuracy axis still spans the run's rounds (from -1, before training).
  const rounds: [number, number] = [Math.min(-1, rows[0]?.round ?? 0), Math.max(0, rows.at(-1)?.round ?? 0)];
  const noEvaluation = 'no held-out evaluation in this run';
  return {
    loss: lineChartSvg(
      {
        title: 'Loss',
        xLabel: 'round',
        yLabel: 'loss',
        series: [
          { name: 'train (mean of L+ and L-)', color: '#2563eb', points: per((r) => r.trainLoss) },
          {
            name: 'held-out',
            color: '#dc2626',
            points: evals.filter((e) => e.loss !== null).map((e) => [e.round, e.loss]),
            missing: 'held-out: none (no evaluation in this run)',
          },
        ],
      },
      mode,
    ),
    accuracy: lineChartSvg(
      {
        title: 'Held-out accuracy',
        xLabel: 'round (-1: before training)',
        yLabel: 'accuracy',
        series: [
          { name: 'accuracy', color: '#16a34a', points: evals.filter((e) => e.accuracy !== null).map((e) => [e.round, e.accuracy]), missing: 'accuracy: none (mezo coordinator --eval-every N evaluates)' },
        ],
        yFormat: pct,
        xRange: rounds,
        empty: noEvaluation,
      },
      mode,
    ),
    agents: lineChartSvg(
      {
        title: 'Agents per round',
        xLabel: 'round',
        yLabel: 'agents',
        // Lines often coincide (every agent sampled, every sampled one answering): each is drawn narrower and
        // on top of the one before, so all four stay visible.
        series: [
          { name: 'online', color: '#64748b', points: per((r) => r.connected), width: 10, opacity: 0.3 },
          { name: 'sampled', color: '#2563eb', points: per((r) => r.asked), width: 6, opacity: 0.45 },
          { name: 'answered', color: '#16a34a', points: per((r) => r.answered) },
          { name: 'dropped', color: '#dc2626', points: per((r) => r.dropped), dash: '6 4' },
        ],
        yMin: 0,
        yIntegers: true,
      },
      mode,
    ),
    bytes: lineChartSvg(
      {
        title: 'Bytes per round',
        xLabel: 'round',
        yLabel: 'bytes',
        series: [
          { name: 'up (agents to coordinator)', color: '#9333ea', points: per((r) => r.bytesUp) },
          { name: 'down', color: '#0891b2', points: per((r) => r.bytesDown) },
        ],
        yFormat: formatBytes,
        yMin: 0,
      },
      mode,
    ),
    scalars: histogramSvg(
      {
        title: lastHistogram ? `Scalars g, round ${lastHistogram.round} (${lastHistogram.scalars.count} values)` : 'Scalars g',
        xLabel: 'g = (L+ - L-) / 2 eps',
        yLabel: 'agents x seeds',
        bins: lastHistogram?.scalars.histogram ?? null,
      },
      mode,
    ),
    agreement: lineChartSvg(
      {
        title: 'Sign agreement across agents',
        xLabel: 'round',
        yLabel: 'fraction',
        series: [
          {
            name: 'sign agreement',
            color: '#ea580c',
            points: per((r) => r.signAgreement),
            // Distinct seeds: no two agents evaluate the same seed, so there is nothing to agree on.
            missing: 'sign agreement: n/a, every seed had one agent (distinct seeds)',
          },
          { name: 'g > 0', color: '#64748b', points: per((r) => r.scalars.positiveFraction) },
        ],
        yMin: 0,
        yMax: 1,
        yFormat: pct,
        empty: 'every seed was evaluated by one agent',
      },
      mode,
    ),
  };
}

/** Rasterises an SVG without system fonts (its text must be paths). */
export function svgToPng(svg: string, width = 1600): Buffer {
  const resvg = new Resvg(svg, { font: { loadSystemFonts: false }, fitTo: { mode: 'width', value: width }, background: '#ffffff' });
  return Buffer.from(resvg.render().asPng());
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const num = (v: number | null, digits = 4): string => (v === null ? '–' : Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : String(Number(v.toFixed(digits))));
const percent = (v: number | null): string => (v === null ? '–' : `${(100 * v).toFixed(1)} %`);

function table(rows: Array<[string, string]>): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

export function reportHtml(record: RunRecord): string {
  const s = record.summary;
  const charts = reportCharts(record, 'text');
  const rejected = Object.entries(s.rejected).map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none';
  const summary = table([
    ['kind', record.kind],
    ['job', record.job],
    ['started', record.startedAt],
    ['ended', record.endedAt ?? 'still running when written'],
    // Which span: `mezo simulate` prints a second, longer time that includes its set-up.
    ['wall time', `${s.wallSeconds.toFixed(1)} s (${record.kind === 'simulate' ? 'from every agent connected to the end' : 'from start to end, the wait for agents included'})`],
    ['rounds', String(s.rounds)],
    ['log version', String(s.version)],
    ['log head', s.headHash],
    ['accuracy before → after', `${percent(s.accuracyBefore)} → ${percent(s.accuracyAfter)}`],
    ['train loss first → last', `${num(s.lossFirst)} → ${num(s.lossLast)}`],
    ['failed attempts', String(s.failedAttempts)],
    ['agents', String(s.agents)],
    ['bytes up / down (total)', `${formatBytes(s.bytesUp)} / ${formatBytes(s.bytesDown)}`],
    ['bytes up / down per agent', `${formatBytes(s.bytesUpPerAgent)} / ${formatBytes(s.bytesDownPerAgent)}`],
    ['late results', String(s.late)],
    ['dropped tasks', String(s.dropped)],
    ['rejected results', rejected],
    ...(s.privacy
      ? [
          [
            'central DP',
            `ε = ${s.privacy.epsilon.toFixed(3)} at δ = ${s.privacy.delta.toExponential()} after ${s.privacy.roundsReleased} rounds, noise multiplier ${s.privacy.noiseMultiplier.toFixed(3)}${s.privacy.budgetSpent ? ' (budget spent)' : ''}`,
          ] as [string, string],
        ]
      : []),
    ...(s.recordPrivacy
      ? [
          [
            'record-level DP',
            `ε = ${s.recordPrivacy.epsilon.toFixed(3)} at δ = ${s.recordPrivacy.delta.toExponential()} per agent's data (${s.recordPrivacy.shardSize} examples) after ${s.recordPrivacy.rounds} rounds, noise multiplier ${s.recordPrivacy.noiseMultiplier.toFixed(3)}, clip ${s.recordPrivacy.clip}${s.recordPrivacy.private ? ', private mode' : ''}${s.recordPrivacy.budgetSpent ? ' (budget spent)' : ''}`,
          ] as [string, string],
        ]
      : []),
  ]);
  // Records written before secrets were redacted may still hold some: never render them.
  const config = table(Object.entries(redactSecrets(record.config)).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  const figure = (name: ChartName): string => `<figure>${charts[name]}<figcaption><a href="${name}.png">${name}.png</a></figcaption></figure>`;
  const agentRows = record.agents
    .map(
      (a) =>
        `<tr><td>${escapeHtml(a.id)}</td><td>${a.connected ? 'yes' : 'no'}</td><td>${a.version}</td><td>${a.replayLag}</td><td>${a.weightsMatch === null ? '–' : a.weightsMatch ? 'yes' : 'NO'}</td><td>${a.tasks}</td><td>${a.accepted}</td><td>${a.rejected}</td><td>${a.late}</td><td>${a.dropped}</td><td>${formatBytes(a.bytesUp)}</td><td>${formatBytes(a.bytesDown)}</td></tr>`,
    )
    .join('');
  const roundRows = record.rounds
    .map(
      (r) =>
        `<tr><td>${r.round}</td><td>${r.attempt}</td><td>${num(r.trainLoss)}</td><td>${num(r.lr, 6)}</td><td>${r.connected}</td><td>${r.asked}</td><td>${r.answered}</td><td>${r.dropped}</td><td>${r.late}</td><td>${r.rejected}</td><td>${formatBytes(r.bytesUp)}</td><td>${formatBytes(r.bytesDown)}</td><td>${percent(r.signAgreement)}</td><td>${r.divergent}</td><td>${r.durationSeconds.toFixed(3)}</td><td class="mono">${r.hash.slice(0, 12)}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mezo-fleet run report · ${escapeHtml(record.job)}</title>
<style>
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111827; background: #f6f7f9; }
main { max-width: 1400px; margin: 0 auto; padding: 16px; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 20px 0 8px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 380px), 1fr)); gap: 12px; }
.cards.charts { grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); }
figure { margin: 0; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #6b7280; text-align: right; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e5e7eb; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
table.kv th { text-align: left; color: #6b7280; font-weight: 500; width: 1%; }
table.kv td { text-align: left; white-space: normal; word-break: break-all; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; }
</style>
</head>
<body>
<main>
<h1>mezo-fleet run report · ${escapeHtml(record.job)} <small>(${record.kind})</small></h1>
<div class="cards"><div class="scroll">${summary}</div><div class="scroll">${config}</div></div>
<h2>Charts</h2>
<div class="cards charts">${CHART_NAMES.map(figure).join('')}</div>
<h2>Agents</h2>
<div class="scroll"><table><thead><tr><th>agent</th><th>online at end</th><th>version</th><th>lag</th><th>weights match</th><th>tasks</th><th>accepted</th><th>rejected</th><th>late</th><th>dropped</th><th>up</th><th>down</th></tr></thead><tbody>${agentRows}</tbody></table></div>
<h2>Rounds</h2>
<div class="scroll"><table><thead><tr><th>round</th><th>attempt</th><th>train loss</th><th>lr</th><th>online</th><th>sampled</th><th>answered</th><th>dropped</th><th>late</th><th>rejected</th><th>up</th><th>down</th><th>sign agreement</th><th>divergent</th><th>seconds</th><th>hash</th></tr></thead><tbody>${roundRows}</tbody></table></div>
</main>
</body>
</html>
`;
}

export interface ReportOutput {
  dir: string;
  html: string;
  pngs: Record<ChartName, string>;
}

/** Writes index.html and <chart>.png for every chart into `dir` (created when missing). */
export async function writeReport(record: RunRecord, dir: string): Promise<ReportOutput> {
  await mkdir(dir, { recursive: true });
  const svgs = reportCharts(record, 'paths');
  const pngs = {} as Record<ChartName, string>;
  for (const name of CHART_NAMES) {
    const path = join(dir, `${name}.png`);
    await writeFile(path, svgToPng(svgs[name]));
    pngs[name] = path;
  }
  const html = join(dir, 'index.html');
  await writeFile(html, reportHtml(record));
  return { dir, html, pngs };
}
