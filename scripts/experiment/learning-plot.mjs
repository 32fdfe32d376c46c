// Learning curves of MeZO runs against backprop, as SVG (and PNG) charts drawn by the project's own chart code
// (coordinator/report/svg-charts.ts, as `mezo report` draws them; no plotting library):
//   <prefix>-rounds.svg    shifted-test accuracy by round (`mezo simulate`) or step (`mezo train`, backprop)
//   <prefix>-seconds.svg   shifted-test accuracy by wall-clock second of training
//   <prefix>-clean.svg     clean-test accuracy by round or step (MeZO runs: the base and the end of the run only,
//                          as the sweep records them)
// Each MeZO configuration is drawn as the mean of its seeds (bold) over its individual seeds (pale); backprop as
// the mean of its seeds and a dashed line at its final level.
//
//   npm run build
//   node scripts/experiment/learning-plot.mjs SWEEP.jsonl [SWEEP2.jsonl …] [--label L1 --label L2 …] \
//     --backprop backprop.jsonl [--backprop-name NAME] [--backprop-label L] [--out docs/img] [--prefix learning] [--png]
//
// SWEEP files are learning-sweep.mjs output (one JSON line per run, grouped into configurations by "name"); the
// i-th --label names the configurations of the i-th file (prefixed to "name" when the file holds several).
// Backprop files are bp-curve.py output; --backprop-name picks one of its configurations (default: the one with
// the best mean final shifted-test accuracy).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { lineChartSvg } = await import(new URL('coordinator/report/svg-charts.js', root).href);
const { svgToPng } = await import(new URL('coordinator/report/render-report.js', root).href);
const { strokeTextWidth } = await import(new URL('coordinator/report/stroke-font.js', root).href);

const { values: args, positionals: sweepFiles } = parseArgs({
  allowPositionals: true,
  options: {
    label: { type: 'string', multiple: true, default: [] },
    backprop: { type: 'string', multiple: true, default: [] },
    'backprop-name': { type: 'string' },
    'backprop-label': { type: 'string' },
    out: { type: 'string', default: 'docs/img' },
    prefix: { type: 'string', default: 'learning' },
    width: { type: 'string', default: '960' },
    png: { type: 'boolean', default: false },
  },
});
if (sweepFiles.length === 0 && args.backprop.length === 0) throw new Error('give at least one sweep file (learning-sweep.mjs output) or --backprop file');
if (args.label.length > sweepFiles.length) throw new Error(`--label: ${args.label.length} labels for ${sweepFiles.length} sweep files`);
if (!/^[A-Za-z0-9._-]+$/.test(args.prefix)) throw new Error(`--prefix: '${args.prefix}' must be a plain file name stem`);
const width = Number(args.width);
if (!Number.isInteger(width) || width < 400 || width > 4000) throw new Error(`--width: expected an integer from 400 to 4000, got '${args.width}'`);

function readJsonLines(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (err) {
        throw new Error(`${file}: line ${i + 1} is not JSON: ${err.message}`);
      }
    });
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

/**
 * One sweep run as points { x (rounds or steps done), seconds, shifted }: simulate's curve is [round index,
 * accuracy] after that round, with the base evaluation kept apart (accuracyBefore); train's starts at step 0.
 */
function sweepPoints(run, file) {
  const where = `${file}: run '${run.name}' seed ${run.seed}`;
  if (!Array.isArray(run.curve)) throw new Error(`${where}: no curve (not learning-sweep.mjs output?)`);
  const seconds = Array.isArray(run.curveSeconds) ? run.curveSeconds : [];
  const train = run.command === 'train';
  const points = run.curve.map(([at, acc], i) => {
    if (!finite(at) || !finite(acc)) throw new Error(`${where}: curve point ${i} is not [number, number]`);
    return { x: train ? at : at + 1, seconds: finite(seconds[i]) ? seconds[i] : null, shifted: acc };
  });
  // Runs swept before the sweep recorded curveSeconds have no time axis: the seconds chart says "no data".
  if (!train || points[0]?.x !== 0) points.unshift({ x: 0, seconds: seconds.length > 0 ? 0 : null, shifted: run.accuracyBefore });
  return points;
}

// Configurations in file order: { label, runs: [{ seed, points, cleanBefore, cleanAfter, derivedSeconds }] }.
const configs = [];
sweepFiles.forEach((file, i) => {
  const lines = readJsonLines(file);
  const names = [...new Set(lines.map((l) => l.name))];
  for (const name of names) {
    const label = args.label[i] === undefined ? name : names.length === 1 ? args.label[i] : `${args.label[i]}: ${name}`;
    const runs = lines
      .filter((l) => l.name === name)
      .map((l) => ({ seed: l.seed, points: sweepPoints(l, file), cleanBefore: l.cleanBefore, cleanAfter: l.cleanAfter, derivedSeconds: l.curveSecondsDerived === true }));
    configs.push({ label, runs });
  }
});

// Backprop: one configuration, its runs keyed by seed, each a list of evaluations in step order.
let backprop;
if (args.backprop.length > 0) {
  const lines = args.backprop.flatMap((file) => readJsonLines(file).map((l) => ({ ...l, file })));
  for (const l of lines) {
    for (const key of ['step', 'seconds', 'shifted', 'clean']) {
      if (!finite(l[key])) throw new Error(`${l.file}: a line of '${l.name}' seed ${l.seed} has no numeric ${key} (not bp-curve.py output?)`);
    }
  }
  const byName = new Map();
  for (const l of lines) {
    const seeds = byName.get(l.name) ?? new Map();
    seeds.set(l.seed, [...(seeds.get(l.seed) ?? []), l]);
    byName.set(l.name, seeds);
  }
  const finalMean = (seeds) => mean([...seeds.values()].map((evals) => evals.reduce((a, b) => (b.step > a.step ? b : a)).shifted));
  let name = args['backprop-name'];
  if (name === undefined) name = [...byName.keys()].reduce((a, b) => (finalMean(byName.get(b)) > finalMean(byName.get(a)) ? b : a));
  if (!byName.has(name)) throw new Error(`--backprop-name: no '${name}' in the backprop files (they hold: ${[...byName.keys()].join(', ')})`);
  const runs = [...byName.get(name).entries()].map(([seed, evals]) => ({ seed, evals: evals.sort((a, b) => a.step - b.step) }));
  backprop = { name, runs, final: finalMean(byName.get(name)) };
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The mean over runs at each x that every run evaluated (seeds of one configuration share their schedule). */
function meanCurve(runs, get) {
  const common = runs
    .map((r) => new Set(r.map((p) => p.x)))
    .reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  return [...common]
    .sort((a, b) => a - b)
    .map((x) => {
      const at = runs.map((r) => r.find((p) => p.x === x));
      const ys = at.map(get.y);
      const xs = get.x ? at.map(get.x) : [x];
      return xs.some((v) => v === null) || ys.some((v) => !finite(v)) ? null : [mean(xs), mean(ys)];
    })
    .filter((p) => p !== null);
}

const PALETTE = ['#2563eb', '#16a34a', '#9333ea', '#ea580c', '#0d9488', '#db2777', '#ca8a04', '#4b5563'];
const BACKPROP = '#dc2626';
const REFERENCE = '#111827';
/** The colour mixed with white, for the individual seeds under a mean. */
function pale(hex, share = 0.62) {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `#${c.map((v) => Math.round(v + (255 - v) * share).toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Series in the order the chart needs them: the legend lists series in order on one row, so the named series
 * come first, then an invisible spacer whose blank legend text pushes the legend entries of every later series
 * (the pale per-seed lines, and the means drawn again on top of them) past the right edge of the image.
 */
function arrange(named, unlisted) {
  if (unlisted.length === 0) return named;
  const spacer = { name: '', color: 'none', points: [], missing: ' '.repeat(400) };
  return [...named, spacer, ...unlisted];
}

const pct = (v) => `${(v * 100).toFixed(0)} %`;
const nSeeds = (runs) => `${runs.length} seed${runs.length === 1 ? '' : 's'}`;

/**
 * A chart of one accuracy against rounds/steps or seconds. curvesOf(config) gives a configuration's mean curve
 * and its seeds' curves as [x, y] points (a null y leaves a gap); backpropX/backpropY read an evaluation of
 * bp-curve.py (backpropX: the step when omitted).
 */
function accuracyChart({ title, xLabel, yLabel = 'shifted-test accuracy', curvesOf, backpropX, backpropY, xMax, reference }) {
  const named = [];
  const unlisted = [];
  const means = [];
  configs.forEach((config, i) => {
    const color = PALETTE[i % PALETTE.length];
    const { mean: meanPoints, seeds } = curvesOf(config);
    const line = { name: `${config.label} (${nSeeds(config.runs)})`, color, width: 2.5, points: meanPoints };
    named.push(line);
    if (seeds.length > 1) {
      for (const points of seeds) unlisted.push({ name: '', color: pale(color), width: 1, points });
      // Drawn again after the pale seeds so that the mean stays on top.
      means.push({ ...line, name: '' });
    }
  });
  if (backprop) {
    const curves = backprop.runs.map((r) => r.evals.map((e) => ({ x: e.step, e })));
    const clip = (pts) => (xMax === undefined ? pts : pts.filter(([x]) => x <= xMax));
    named.push({
      name: `${args['backprop-label'] ?? backprop.name} (${nSeeds(backprop.runs)})`,
      color: BACKPROP,
      width: 2,
      points: clip(meanCurve(curves, { x: backpropX ? (p) => backpropX(p.e) : undefined, y: (p) => backpropY(p.e) })),
    });
  }
  const xs = [...named, ...unlisted].flatMap((s) => s.points.map(([x]) => x));
  const right = xMax ?? Math.max(1, ...xs);
  if (backprop && reference) {
    const level = reference();
    named.push({ name: `backprop final ${(level * 100).toFixed(1)} %`, color: REFERENCE, width: 1.5, dash: '6 4', points: [[0, level], [right, level]] });
  }
  const series = arrange(named, [...unlisted, ...means]);
  // The legend is one row: widen the chart to fit it (the stroke font of the PNGs is the wider of the two).
  const legendWidth = named.reduce((w, s) => w + 38 + strokeTextWidth(s.name, 11), 0);
  const spec = { title, xLabel, yLabel, series, yFormat: pct, width: Math.max(width, Math.ceil(78 + legendWidth + 20)), height: 440 };
  return { text: lineChartSvg(spec, 'text'), paths: lineChartSvg(spec, 'paths') };
}

const mezoMaxX = Math.max(0, ...configs.flatMap((c) => c.runs.flatMap((r) => r.points.map((p) => p.x))));
const mezoMaxSeconds = Math.max(0, ...configs.flatMap((c) => c.runs.flatMap((r) => r.points.map((p) => p.seconds ?? 0))));
const derived = configs.filter((c) => c.runs.some((r) => r.derivedSeconds)).map((c) => c.label);

/** Mean and per-seed curves of a configuration, y read from each sweep point (x: rounds/steps or seconds). */
const sweepCurves = (x) => (config) => {
  const seeds = config.runs.map((r) => r.points.filter((p) => x(p) !== null).map((p) => [x(p), p.shifted]));
  return { mean: meanCurve(config.runs.map((r) => r.points), { x: (p) => x(p), y: (p) => p.shifted }), seeds };
};

const charts = {
  rounds: accuracyChart({
    title: 'Shifted-test accuracy by round or step',
    xLabel: 'rounds or steps done',
    curvesOf: sweepCurves((p) => p.x),
    backpropY: (e) => e.shifted,
    // Backprop runs for more steps than MeZO's runs have rounds: its curve is cut at their end.
    xMax: mezoMaxX > 0 ? mezoMaxX : undefined,
    reference: () => backprop.final,
  }),
  seconds: accuracyChart({
    title: 'Shifted-test accuracy by second of training',
    xLabel: 'seconds',
    curvesOf: sweepCurves((p) => p.seconds),
    backpropX: (e) => e.seconds,
    backpropY: (e) => e.shifted,
    xMax: mezoMaxSeconds > 0 ? mezoMaxSeconds : undefined,
    reference: () => backprop.final,
  }),
  clean: accuracyChart({
    title: 'Clean-test accuracy (MeZO: at the start and the end only)',
    xLabel: 'rounds or steps done',
    yLabel: 'clean-test accuracy',
    // The sweep scores clean digits before and after a run only: two points with a gap, not a line.
    curvesOf: (config) => {
      const end = (r) => r.points.at(-1).x;
      const endpoints = (before, after, x) => [[0, before], [x / 2, null], [x, after]];
      return {
        mean: endpoints(mean(config.runs.map((r) => r.cleanBefore)), mean(config.runs.map((r) => r.cleanAfter)), Math.max(...config.runs.map(end))),
        seeds: config.runs.map((r) => endpoints(r.cleanBefore, r.cleanAfter, end(r))),
      };
    },
    backpropY: (e) => e.clean,
    xMax: mezoMaxX > 0 ? mezoMaxX : undefined,
    reference: () => mean(backprop.runs.map((r) => r.evals.at(-1).clean)),
  }),
};

const out = resolve(args.out);
mkdirSync(out, { recursive: true });
for (const [kind, { text, paths }] of Object.entries(charts)) {
  const file = join(out, `${args.prefix}-${kind}.svg`);
  writeFileSync(file, `${text}\n`);
  process.stdout.write(`${file}\n`);
  if (args.png) {
    // PNGs are rasterised without system fonts: their labels are stroke-font paths.
    const png = join(out, `${args.prefix}-${kind}.png`);
    writeFileSync(png, svgToPng(paths, Number(/width="(\d+)"/.exec(paths)[1]) * 2));
    process.stdout.write(`${png}\n`);
  }
}
if (derived.length > 0) {
  process.stdout.write(`note: seconds of ${derived.join(', ')} are placed at step / steps of the measured training time (mezo train reports no time per step)\n`);
}

// What the charts show, as a Markdown table: the final level (mean ± sample sd over seeds), backprop's share, and
// where each mean curve first reaches a few levels (round or step, and second).
const LEVELS = [0.85, 0.88, 0.9, 0.93];
const sd = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) : Number.NaN);
const fmtPct = (xs) => `${(mean(xs) * 100).toFixed(2)}${xs.length > 1 ? ` ± ${(sd(xs) * 100).toFixed(2)}` : ''} %`;
function firstReach(byX, bySeconds, level) {
  const i = byX.findIndex(([, y]) => y >= level);
  if (i < 0) return '—';
  const s = bySeconds.find(([, y]) => y >= level);
  return `${byX[i][0]}${s ? ` (${s[0].toFixed(1)} s)` : ''}`;
}
const base = configs[0]?.runs[0]?.points[0]?.shifted ?? backprop?.runs[0]?.evals[0]?.shifted;
const rows = configs.map((c) => {
  const finals = c.runs.map((r) => r.points.at(-1).shifted);
  const byX = meanCurve(c.runs.map((r) => r.points), { y: (p) => p.shifted });
  const bySeconds = meanCurve(c.runs.map((r) => r.points), { x: (p) => p.seconds, y: (p) => p.shifted });
  return { label: c.label, runs: c.runs, finals, end: byX.at(-1)?.[0], seconds: bySeconds.at(-1)?.[0], byX, bySeconds };
});
if (backprop) {
  const curves = backprop.runs.map((r) => r.evals.map((e) => ({ x: e.step, e })));
  rows.push({
    label: args['backprop-label'] ?? backprop.name,
    runs: backprop.runs,
    finals: backprop.runs.map((r) => r.evals.at(-1).shifted),
    end: Math.max(...backprop.runs.map((r) => r.evals.at(-1).step)),
    seconds: mean(backprop.runs.map((r) => r.evals.at(-1).seconds)),
    byX: meanCurve(curves, { y: (p) => p.e.shifted }),
    bySeconds: meanCurve(curves, { x: (p) => p.e.seconds, y: (p) => p.e.shifted }),
  });
}
process.stdout.write(`\n| run | seeds | shifted-test accuracy at the end | share of backprop's gain | rounds or steps | seconds | ${LEVELS.map((l) => `first ≥ ${l * 100} %`).join(' | ')} |\n`);
process.stdout.write(`|---|---:|---:|---:|---:|---:|${LEVELS.map(() => '---:').join('|')}|\n`);
for (const row of rows) {
  const share = backprop && finite(base) ? `${(((mean(row.finals) - base) / (backprop.final - base)) * 100).toFixed(0)} %` : '—';
  const seconds = finite(row.seconds) ? row.seconds.toFixed(1) : '—';
  process.stdout.write(
    `| ${row.label} | ${row.runs.map((r) => r.seed).join(', ')} | ${fmtPct(row.finals)} | ${share} | ${row.end} | ${seconds} | ${LEVELS.map((l) => firstReach(row.byX, row.bySeconds, l)).join(' | ')} |\n`,
  );
}
