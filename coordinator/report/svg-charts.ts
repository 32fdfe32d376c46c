/**
 * Small SVG charts for run reports: line charts over rounds and a histogram. Text is drawn either as <text>
 * (for the HTML report: browsers have fonts) or as stroke-font paths (for PNGs rasterised without fonts, see
 * stroke-font.ts), from the same layout.
 */
import { strokeText, strokeTextWidth } from './stroke-font.js';

export type TextMode = 'text' | 'paths';

export interface Series {
  name: string;
  color: string;
  /** (x, y) points; a null y breaks the line. */
  points: ReadonlyArray<readonly [number, number | null]>;
  /** Line width (default 2): a wider, paler line drawn first stays visible under one that covers it. */
  width?: number;
  /** SVG stroke-dasharray, e.g. '6 4'. */
  dash?: string;
  opacity?: number;
  /** Legend text when the series has no point at all (why it has none); default: the name and "no data". */
  missing?: string;
}

interface Frame {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Shown in the plot area when there is nothing to draw. */
  empty?: string;
}

export interface LineChartSpec extends Frame {
  series: Series[];
  yFormat?: (value: number) => string;
  /** Fixed y bounds (default: the data's, padded). */
  yMin?: number;
  yMax?: number;
  /** The y axis counts things: ticks on whole numbers only. */
  yIntegers?: boolean;
  /** The x range when no series has a point (e.g. the run's rounds), so the axis still reads right. */
  xRange?: [number, number];
}

export interface HistogramSpec extends Frame {
  bins: { min: number; max: number; counts: readonly number[] } | null;
  color?: string;
}

const FG = '#111827';
const MUTED = '#6b7280';
const GRID = '#e5e7eb';

const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
const r2 = (v: number): string => (Math.round(v * 100) / 100).toString();

function label(mode: TextMode, text: string, x: number, y: number, size: number, anchor: 'start' | 'middle' | 'end', color = FG, vertical = false): string {
  if (mode === 'paths') return strokeText(text, x, y, { size, anchor, color, vertical });
  const rotate = vertical ? ` transform="rotate(-90 ${r2(x)} ${r2(y)})"` : '';
  return `<text x="${r2(x)}" y="${r2(y)}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="${size}" text-anchor="${anchor}" fill="${color}"${rotate}>${escapeXml(text)}</text>`;
}

function labelWidth(mode: TextMode, text: string, size: number): number {
  // <text> widths are unknown here; the stroke font's is a fair estimate of a sans-serif's.
  return mode === 'paths' ? strokeTextWidth(text, size) : text.length * size * 0.58;
}

/**
 * Round tick values covering [min, max]: steps of 1, 2 or 5 × 10^k; with `integers`, never below 1 (an axis of
 * rounds or counts has no 0.5).
 */
export function niceTicks(min: number, max: number, target = 5, integers = false): { ticks: number[]; step: number } {
  if (!(max > min)) return { ticks: [integers ? Math.round(min) : min], step: 1 };
  const raw = (max - min) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(integers ? 1 : 0, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power);
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { ticks, step };
}

export function formatTick(value: number, step: number): string {
  const a = Math.abs(value);
  if (a !== 0 && (a >= 1e6 || a < 1e-4 || step < 1e-4)) return value.toExponential(1).replace('e+', 'e');
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return value.toFixed(decimals);
}

/** Bytes with decimal prefixes (kB, MB, …), for byte axes. */
export function formatBytes(value: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(v) : Number(v.toFixed(v >= 100 ? 0 : 1))} ${units[i]}`;
}

function domain(values: number[], fixedMin?: number, fixedMax?: number, pad = 0.05): [number, number] {
  let min = fixedMin ?? Math.min(...values);
  let max = fixedMax ?? Math.max(...values);
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    return [fixedMin ?? min - d, fixedMax ?? max + d];
  }
  const span = max - min;
  if (fixedMin === undefined) min -= span * pad;
  if (fixedMax === undefined) max += span * pad;
  return [min, max];
}

interface Layout {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function layout(frame: Frame): Layout {
  const width = frame.width ?? 800;
  const height = frame.height ?? 400;
  return { width, height, left: 78, right: width - 20, top: 56, bottom: height - 52 };
}

/** Title, axes labels, grid and ticks; returns the SVG parts and the coordinate maps. */
function axes(
  mode: TextMode,
  frame: Frame,
  box: Layout,
  x: [number, number],
  y: [number, number],
  yFormat: (v: number, step: number) => string,
  xFormat: (v: number, step: number) => string,
  integers: { x: boolean; y: boolean } = { x: false, y: false },
): { parts: string[]; sx: (v: number) => number; sy: (v: number) => number } {
  const sx = (v: number): number => box.left + ((v - x[0]) / (x[1] - x[0])) * (box.right - box.left);
  const sy = (v: number): number => box.bottom - ((v - y[0]) / (y[1] - y[0])) * (box.bottom - box.top);
  const parts = [`<rect width="${box.width}" height="${box.height}" fill="#ffffff"/>`];
  parts.push(label(mode, frame.title, box.left, 24, 16, 'start', FG));
  const yt = niceTicks(y[0], y[1], 5, integers.y);
  for (const t of yt.ticks) {
    if (t < y[0] || t > y[1]) continue;
    parts.push(`<line x1="${box.left}" x2="${box.right}" y1="${r2(sy(t))}" y2="${r2(sy(t))}" stroke="${GRID}" stroke-width="1"/>`);
    parts.push(label(mode, yFormat(t, yt.step), box.left - 6, sy(t) + 4, 11, 'end', MUTED));
  }
  const xt = niceTicks(x[0], x[1], Math.max(2, Math.min(8, Math.floor((box.right - box.left) / 90))), integers.x);
  for (const t of xt.ticks) {
    if (t < x[0] || t > x[1]) continue;
    parts.push(`<line x1="${r2(sx(t))}" x2="${r2(sx(t))}" y1="${box.bottom}" y2="${box.bottom + 4}" stroke="${MUTED}" stroke-width="1"/>`);
    parts.push(label(mode, xFormat(t, xt.step), sx(t), box.bottom + 18, 11, 'middle', MUTED));
  }
  parts.push(`<line x1="${box.left}" x2="${box.right}" y1="${box.bottom}" y2="${box.bottom}" stroke="${MUTED}" stroke-width="1"/>`);
  parts.push(`<line x1="${box.left}" x2="${box.left}" y1="${box.top}" y2="${box.bottom}" stroke="${MUTED}" stroke-width="1"/>`);
  parts.push(label(mode, frame.xLabel, (box.left + box.right) / 2, box.height - 12, 12, 'middle', FG));
  parts.push(label(mode, frame.yLabel, 16, (box.top + box.bottom) / 2, 12, 'middle', FG, true));
  return { parts, sx, sy };
}

function legend(
  mode: TextMode,
  box: Layout,
  entries: Array<{ name: string; color: string; dash?: string; opacity?: number; missing?: string | undefined }>,
): string[] {
  const parts: string[] = [];
  let x = box.left;
  for (const { name, color, dash, opacity, missing } of entries) {
    // A series with nothing to draw gets a hollow swatch and says why, instead of a key to an invisible line.
    if (missing !== undefined) parts.push(`<rect x="${r2(x + 0.5)}" y="35.5" width="13" height="5" fill="none" stroke="${color}" stroke-width="1"/>`);
    else if (dash) parts.push(`<line x1="${r2(x)}" x2="${r2(x + 14)}" y1="38" y2="38" stroke="${color}" stroke-width="3" stroke-dasharray="${dash}"/>`);
    else parts.push(`<rect x="${r2(x)}" y="${opacity !== undefined ? 35 : 36}" width="14" height="${opacity !== undefined ? 6 : 4}" fill="${color}"${opacity !== undefined ? ` fill-opacity="${opacity}"` : ''}/>`);
    const text = missing ?? name;
    parts.push(label(mode, text, x + 20, 42, 11, 'start', missing !== undefined ? MUTED : FG));
    x += 20 + labelWidth(mode, text, 11) + 18;
  }
  return parts;
}

function svg(box: Layout, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${box.width}" height="${box.height}" viewBox="0 0 ${box.width} ${box.height}" role="img">${parts.join('')}</svg>`;
}

function emptyNote(mode: TextMode, box: Layout, text: string): string {
  return label(mode, text, (box.left + box.right) / 2, (box.top + box.bottom) / 2, 13, 'middle', MUTED);
}

export function lineChartSvg(spec: LineChartSpec, mode: TextMode): string {
  const box = layout(spec);
  const xs = spec.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = spec.series.flatMap((s) => s.points.map(([, y]) => y).filter((y): y is number => y !== null && Number.isFinite(y)));
  const drawn = (series: Series): boolean => series.points.some(([, py]) => py !== null && Number.isFinite(py));
  const x = domain(xs.length ? xs : (spec.xRange ?? [0, 1]), undefined, undefined, 0);
  const y = domain(ys.length ? ys : [0, 1], spec.yMin, spec.yMax);
  const yFormat = spec.yFormat ? (v: number): string => spec.yFormat!(v) : formatTick;
  // The x axis is rounds: whole numbers.
  const { parts, sx, sy } = axes(mode, spec, box, x, y, yFormat, formatTick, { x: true, y: spec.yIntegers ?? false });
  parts.push(
    ...legend(
      mode,
      box,
      spec.series.map((s) => ({ ...s, missing: drawn(s) ? undefined : (s.missing ?? `${s.name}: no data`) })),
    ),
  );
  if (ys.length === 0) parts.push(emptyNote(mode, box, spec.empty ?? 'no data'));
  for (const series of spec.series) {
    let d = '';
    let pen = false;
    for (const [px, py] of series.points) {
      if (py === null || !Number.isFinite(py)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${r2(sx(px))} ${r2(sy(py))}`;
      pen = true;
    }
    const style = `${series.dash ? ` stroke-dasharray="${series.dash}"` : ''}${series.opacity !== undefined ? ` stroke-opacity="${series.opacity}"` : ''}`;
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${series.color}" stroke-width="${series.width ?? 2}"${style} stroke-linejoin="round" stroke-linecap="round"/>`);
    const shown = series.points.filter(([, py]) => py !== null && Number.isFinite(py));
    if (shown.length <= 60) {
      for (const [px, py] of shown) parts.push(`<circle cx="${r2(sx(px))}" cy="${r2(sy(py!))}" r="2.5" fill="${series.color}"/>`);
    }
  }
  return svg(box, parts);
}

export function histogramSvg(spec: HistogramSpec, mode: TextMode): string {
  const box = layout(spec);
  const bins = spec.bins;
  const color = spec.color ?? '#2563eb';
  if (!bins || bins.counts.length === 0) {
    const { parts } = axes(mode, spec, box, [0, 1], [0, 1], formatTick, formatTick);
    parts.push(emptyNote(mode, box, spec.empty ?? 'no data'));
    return svg(box, parts);
  }
  const n = bins.counts.length;
  const single = n === 1 || bins.max === bins.min;
  const x: [number, number] = single ? domain([bins.min]) : [bins.min, bins.max];
  const y: [number, number] = [0, Math.max(1, ...bins.counts) * 1.1];
  // Counts on the y axis: whole numbers.
  const { parts, sx, sy } = axes(mode, spec, box, x, y, formatTick, formatTick, { x: false, y: true });
  const width = single ? (x[1] - x[0]) / 20 : (bins.max - bins.min) / n;
  bins.counts.forEach((count, i) => {
    const left = single ? bins.min - width / 2 : bins.min + i * width;
    const x0 = sx(left);
    const x1 = sx(left + width);
    const gap = Math.min(1, (x1 - x0) * 0.1);
    parts.push(`<rect x="${r2(x0 + gap)}" y="${r2(sy(count))}" width="${r2(Math.max(0.5, x1 - x0 - 2 * gap))}" height="${r2(sy(0) - sy(count))}" fill="${color}" fill-opacity="0.8"/>`);
  });
  // Zero splits the scalars by sign: the line shows at a glance how many agents pushed each way.
  if (x[0] < 0 && x[1] > 0) parts.push(`<line x1="${r2(sx(0))}" x2="${r2(sx(0))}" y1="${box.top}" y2="${box.bottom}" stroke="#dc2626" stroke-width="1" stroke-dasharray="4 3"/>`);
  return svg(box, parts);
}
