/**
 * A tiny single-stroke font for chart labels drawn as SVG paths. The PNG charts are rasterised by resvg with
 * system fonts turned off, so no text depends on which fonts a machine has installed: labels look the same on
 * every machine and in every PNG, at the cost of a plain, upper-case-only look.
 *
 * Glyphs are polylines on a grid 4 units wide and 6 high (y down, baseline at 6); lower case is drawn as upper
 * case; anything without a glyph is drawn as '?'.
 */

const GLYPHS: Record<string, readonly string[]> = {
  '0': ['1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0', '0.6,4.6 3.4,1.4'],
  '1': ['1,1 2,0 2,6', '1,6 3,6'],
  '2': ['0,1 1,0 3,0 4,1 4,2 0,6 4,6'],
  '3': ['0,0 4,0 2,2 3,2 4,3 4,5 3,6 1,6 0,5'],
  '4': ['3,6 3,0 0,4 4,4'],
  '5': ['4,0 0,0 0,2 3,2 4,3 4,5 3,6 1,6 0,5'],
  '6': ['3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,3 3,2 0,2'],
  '7': ['0,0 4,0 1,6'],
  '8': ['1,0 3,0 4,1 4,2 3,3 1,3 0,4 0,5 1,6 3,6 4,5 4,4 3,3', '1,3 0,2 0,1 1,0'],
  '9': ['4,4 1,4 0,3 0,1 1,0 3,0 4,1 4,5 3,6 1,6'],
  A: ['0,6 0,2 2,0 4,2 4,6', '0,4 4,4'],
  B: ['0,0 0,6 3,6 4,5 4,4 3,3 0,3', '0,0 3,0 4,1 4,2 3,3'],
  C: ['4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5'],
  D: ['0,0 0,6 2,6 4,4 4,2 2,0 0,0'],
  E: ['4,0 0,0 0,6 4,6', '0,3 3,3'],
  F: ['4,0 0,0 0,6', '0,3 3,3'],
  G: ['4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,3 2,3'],
  H: ['0,0 0,6', '4,0 4,6', '0,3 4,3'],
  I: ['1,0 3,0', '2,0 2,6', '1,6 3,6'],
  J: ['4,0 4,5 3,6 1,6 0,5'],
  K: ['0,0 0,6', '4,0 0,4', '1,3 4,6'],
  L: ['0,0 0,6 4,6'],
  M: ['0,6 0,0 2,3 4,0 4,6'],
  N: ['0,6 0,0 4,6 4,0'],
  O: ['1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0'],
  P: ['0,6 0,0 3,0 4,1 4,2 3,3 0,3'],
  Q: ['1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0', '2,4 4,6'],
  R: ['0,6 0,0 3,0 4,1 4,2 3,3 0,3', '2,3 4,6'],
  S: ['4,1 3,0 1,0 0,1 0,2 1,3 3,3 4,4 4,5 3,6 1,6 0,5'],
  T: ['0,0 4,0', '2,0 2,6'],
  U: ['0,0 0,5 1,6 3,6 4,5 4,0'],
  V: ['0,0 2,6 4,0'],
  W: ['0,0 1,6 2,3 3,6 4,0'],
  X: ['0,0 4,6', '4,0 0,6'],
  Y: ['0,0 2,3 4,0', '2,3 2,6'],
  Z: ['0,0 4,0 0,6 4,6'],
  '.': ['1.8,6 2.2,6'],
  ',': ['2.2,5.4 1.6,7'],
  '-': ['1,3 3,3'],
  '+': ['0.5,3 3.5,3', '2,1.5 2,4.5'],
  ':': ['1.8,2 2.2,2', '1.8,5.6 2.2,5.6'],
  '/': ['0,6 4,0'],
  '%': ['0,6 4,0', '0,0 1,0 1,1 0,1 0,0', '3,5 4,5 4,6 3,6 3,5'],
  '(': ['3,0 2,1 2,5 3,6'],
  ')': ['1,0 2,1 2,5 1,6'],
  '[': ['3,0 1,0 1,6 3,6'],
  ']': ['1,0 3,0 3,6 1,6'],
  '=': ['0.5,2 3.5,2', '0.5,4 3.5,4'],
  '_': ['0,6.6 4,6.6'],
  '#': ['1,0 1,6', '3,0 3,6', '0,2 4,2', '0,4 4,4'],
  '<': ['4,1 0,3 4,5'],
  '>': ['0,1 4,3 0,5'],
  '|': ['2,-0.5 2,6.5'],
  "'": ['2,0 2,1.5'],
  '×': ['0.8,1.8 3.2,4.2', '3.2,1.8 0.8,4.2'],
  '·': ['1.8,3 2.2,3'],
  '?': ['0,1 1,0 3,0 4,1 4,2 2,3 2,4.2', '1.8,6 2.2,6'],
  '…': ['0.3,6 0.5,6', '1.9,6 2.1,6', '3.5,6 3.7,6'],
};
const ALIASES: Record<string, string> = { '−': '-', '–': '-', '—': '-', 'µ': 'U', 'μ': 'U', '≥': '>', '≤': '<' };

/** Horizontal advance of one character, in grid units (glyph 4 + spacing 2). */
const ADVANCE = 6;
/** Grid units per em: a 6-unit cap height is 3/4 of the font size. */
const UNITS_PER_EM = 8;

function glyph(char: string): readonly string[] | undefined {
  if (char === ' ') return [];
  const c = ALIASES[char] ?? char.toUpperCase();
  return GLYPHS[c] ?? GLYPHS['?'];
}

/** Width of `text` at `size` (px per em). */
export function strokeTextWidth(text: string, size: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : ((n * ADVANCE - 2) * size) / UNITS_PER_EM;
}

export interface StrokeTextOptions {
  size: number;
  anchor?: 'start' | 'middle' | 'end';
  color?: string;
  /** Rotate by −90° about (x, y) (y-axis labels). */
  vertical?: boolean;
}

/**
 * `text` as one SVG path. (x, y) is the baseline point at the anchor, as for an SVG <text>; the stroke width
 * follows the size so small labels stay legible.
 */
export function strokeText(text: string, x: number, y: number, options: StrokeTextOptions): string {
  const { size, anchor = 'start', color = '#111827', vertical = false } = options;
  const scale = size / UNITS_PER_EM;
  const width = strokeTextWidth(text, size);
  const x0 = anchor === 'start' ? 0 : anchor === 'middle' ? -width / 2 : -width;
  const parts: string[] = [];
  [...text].forEach((char, i) => {
    for (const stroke of glyph(char) ?? []) {
      const points = stroke.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
      parts.push(
        points.map(([gx, gy], k) => `${k === 0 ? 'M' : 'L'}${fmt(x0 + (i * ADVANCE + gx) * scale)} ${fmt((gy - 6) * scale)}`).join(''),
      );
    }
  });
  if (parts.length === 0) return '';
  const transform = vertical ? `translate(${fmt(x)} ${fmt(y)}) rotate(-90)` : `translate(${fmt(x)} ${fmt(y)})`;
  const strokeWidth = fmt(Math.max(0.8, size / 11));
  return `<path transform="${transform}" d="${parts.join('')}" fill="none" stroke="${color}" stroke-width="${strokeWidth}" stroke-linecap="round" stroke-linejoin="round"/>`;
}

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();
