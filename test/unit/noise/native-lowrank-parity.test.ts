/**
 * The native addon's low-rank kernel (lowrank v1) against the TypeScript kernel, bit for bit, on both native paths:
 * the one this process dispatched to (AVX2 where the CPU has it) and, in a child process started with
 * MEZO_NOISE_SIMD=generic, the portable one. Cases exceed 10^6 elements and use odd shapes: column counts that are
 * not multiples of 4 (or of the row tiles), rows·r crossing Philox block boundaries, ranges starting mid-row,
 * offsets past 2^40, thread splits inside a matrix. Also the addon's own argument checks.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jsKernel } from '../../../shared/noise/js-kernel.js';
import { DIST_LOWRANK, type PackedLowRank } from '../../../shared/noise/kernel.js';
import { nativeAddonReport, type NativeNoiseBinding } from '../../../shared/noise/native-binding.js';

const require = createRequire(import.meta.url);
const ADDON = nativeAddonReport().loaded;
if (ADDON === undefined) throw new Error(`no native addon loads: ${JSON.stringify(nativeAddonReport().candidates)}`);
const ADDON_PATH = ADDON.path;
const native = require(ADDON_PATH) as NativeNoiseBinding;

const TWO40 = 2 ** 40;

interface Case {
  name: string;
  seed: number;
  /** Elements of the view, which starts `lead` floats into its buffer. */
  length: number;
  lead: number;
  offset: number;
  start: number;
  end: number;
  rank: number;
  /** (offset, rows, cols) triples in global coordinates. */
  matrices: number[];
  /** (k0, k1) pairs; one pair and `scale` for a perturb, several with `coeffs` for an accumulate. */
  keys: number[];
  coeffs: number[];
  threads: number;
}

/** A model-like layout from `base`: a large odd matrix, a bias, a small matrix, a bias, a wide matrix. */
function layoutAt(base: number): number[] {
  const a = { offset: base + 3, rows: 1001, cols: 997 };
  const b = { offset: a.offset + a.rows * a.cols + 997, rows: 250, cols: 131 };
  const c = { offset: b.offset + b.rows * b.cols + 131, rows: 7, cols: 4099 };
  return [a, b, c].flatMap((m) => [m.offset, m.rows, m.cols]);
}

const LAYOUT_LENGTH = 3 + 1001 * 997 + 997 + 250 * 131 + 131 + 7 * 4099 + 11;

function buildCases(): Case[] {
  const common = { lead: 0, threads: 1, length: LAYOUT_LENGTH, start: 0, end: LAYOUT_LENGTH };
  const perturb = (k0: number, k1: number, scale: number) => ({ keys: [k0, k1], coeffs: [scale] });
  return [
    { ...common, name: 'perturb r=4, whole model-like layout', seed: 1, offset: 0, rank: 4, matrices: layoutAt(0), ...perturb(0x12345678, 0, 1) },
    { ...common, name: 'perturb r=3, offset past 2^40, all-ones key', seed: 2, offset: TWO40 - 5, rank: 3, matrices: layoutAt(TWO40 - 5), ...perturb(0xffffffff, 0xffffffff, -0.75) },
    { ...common, name: 'perturb r=1, sub-range starting and ending mid-row', seed: 3, offset: 0, rank: 1, matrices: layoutAt(0), start: 3 + 997 * 5 + 13, end: LAYOUT_LENGTH - 4099 * 2 - 17, ...perturb(7, 9, 2.5) },
    { ...common, name: 'perturb r=64, view of a shard starting mid-row (matrix begins before the view)', seed: 4, lead: 5, offset: 3 + 997 * 40 + 500, length: LAYOUT_LENGTH - (3 + 997 * 40 + 500), end: LAYOUT_LENGTH - (3 + 997 * 40 + 500), rank: 64, matrices: layoutAt(0), ...perturb(0xdeadbeef, 0xcafef00d, 0.01) },
    { ...common, name: 'perturb r=5, 2 threads splitting inside the large matrix', seed: 5, offset: 0, rank: 5, matrices: layoutAt(0), threads: 2, ...perturb(1, 2, 0.3) },
    { ...common, name: 'accumulate r=4, 5 entries (two sharing the high word), 3 threads', seed: 6, offset: 0, rank: 4, matrices: layoutAt(0), threads: 3, keys: [1, 100, 2, 100, 0xffffffff, 0, 3, 0xabcdef01, 4, 5], coeffs: [0.5, -1e-3, 2e-2, -3, 7e-4] },
    { ...common, name: 'accumulate r=2, 3 entries, sub-range, offset past 2^40', seed: 7, offset: TWO40 + 1, rank: 2, matrices: layoutAt(TWO40 + 1), start: 1001, end: LAYOUT_LENGTH - 1, keys: [9, 8, 7, 6, 5, 4], coeffs: [1, -1, 0.25] },
  ];
}

const CASES = buildCases();

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random floats of both signs and magnitudes 1e-6..10 in and around the view, so low bits of the noise show. */
function makeInput(spec: Case): ArrayBuffer {
  const floats = new Float32Array(spec.lead + spec.length + 3);
  const rand = mulberry32(spec.seed);
  for (let i = 0; i < floats.length; i++) floats[i] = (rand() < 0.5 ? -1 : 1) * 10 ** (-6 + 7 * rand());
  return floats.buffer;
}

const viewOf = (buffer: ArrayBuffer, spec: Case): Float32Array => new Float32Array(buffer, 4 * spec.lead, spec.length);
const digest = (buffer: ArrayBuffer): string => createHash('sha256').update(new Uint8Array(buffer)).digest('hex');

function applyJs(spec: Case, slab: Float32Array): void {
  const layout: PackedLowRank = { rank: spec.rank, matrices: Float64Array.from(spec.matrices) };
  if (spec.coeffs.length === 1) {
    jsKernel.perturb(slab, spec.keys[0]!, spec.keys[1]!, spec.coeffs[0]!, spec.offset, spec.start, spec.end, DIST_LOWRANK, layout);
  } else {
    jsKernel.accumulate(slab, Uint32Array.from(spec.keys), Float32Array.from(spec.coeffs), spec.offset, spec.start, spec.end, DIST_LOWRANK, layout);
  }
}

function applyNative(addon: NativeNoiseBinding, spec: Case, slab: Float32Array): void {
  addon.setThreads(spec.threads);
  const matrices = Float64Array.from(spec.matrices);
  if (spec.coeffs.length === 1) {
    addon.perturb(slab, spec.keys[0]!, spec.keys[1]!, spec.coeffs[0]!, spec.offset, spec.start, spec.end, DIST_LOWRANK, spec.rank, matrices);
  } else {
    addon.accumulate(slab, Uint32Array.from(spec.keys), Float32Array.from(spec.coeffs), spec.offset, spec.start, spec.end, DIST_LOWRANK, spec.rank, matrices);
  }
}

const expected = new Map<Case, string>();
function expectedDigest(spec: Case): string {
  let d = expected.get(spec);
  if (d === undefined) {
    const buffer = makeInput(spec);
    applyJs(spec, viewOf(buffer, spec));
    d = digest(buffer);
    expected.set(spec, d);
  }
  return d;
}

afterEach(() => native.setThreads(1));

describe(`native lowrank, ${native.simd()} path (this process) ≡ TypeScript kernel`, () => {
  it('implements the low-rank extension, version 1', () => {
    expect(native.lowRankVersion).toBe(1);
  });

  for (const spec of CASES) {
    it(`${spec.name} (${spec.end - spec.start} elements)`, () => {
      const buffer = makeInput(spec);
      applyNative(native, spec, viewOf(buffer, spec));
      expect(digest(buffer)).toBe(expectedDigest(spec));
    }, 60_000);
  }

  it('every start/end pair around row and matrix edges matches', () => {
    const matrices = Float64Array.of(2, 5, 7, 2 + 35 + 3, 3, 9);
    const layout = { rank: 3, matrices };
    const input = Float32Array.from({ length: 80 }, (_, i) => Math.fround(Math.cos(i) + 0.01));
    for (const offset of [0, 1, 6]) {
      for (let start = 0; start <= 74; start += 1) {
        for (const end of [start, start + 1, start + 5, start + 6, 74, input.length]) {
          if (end > input.length || end < start) continue;
          const a = input.slice();
          const b = input.slice();
          native.perturb(a, 0x0badf00d, 0x12, 0.25, offset, start, end, DIST_LOWRANK, 3, matrices);
          jsKernel.perturb(b, 0x0badf00d, 0x12, 0.25, offset, start, end, DIST_LOWRANK, layout);
          expect(Array.from(new Uint32Array(a.buffer)), `offset ${offset} [${start}, ${end})`).toEqual(Array.from(new Uint32Array(b.buffer)));
        }
      }
    }
  });

  it('gives the same bits whatever the thread count', () => {
    const spec = CASES[5]!;
    let reference: string | undefined;
    for (const threads of [1, 2, 4, 7, 256]) {
      const buffer = makeInput(spec);
      applyNative(native, { ...spec, threads }, viewOf(buffer, spec));
      const d = digest(buffer);
      if (reference === undefined) reference = d;
      else expect(d, `threads ${threads}`).toBe(reference);
    }
  }, 60_000);

  it('checks the layout at the C++ boundary, naming it, and writes nothing on error', () => {
    const slab = Float32Array.from({ length: 64 }, (_, i) => i + 0.5);
    const before = Array.from(slab);
    const call = (rank: unknown, matrices: unknown) => () =>
      native.perturb(slab, 1, 2, 1, 0, 0, 64, DIST_LOWRANK, rank as number, matrices as Float64Array);
    expect(call(0, new Float64Array(0))).toThrow(/perturb: rank must be an integer in \[1, 64\]/);
    expect(call(65, new Float64Array(0))).toThrow(RangeError);
    expect(call(undefined, new Float64Array(0))).toThrow(TypeError);
    expect(call(2, [0, 4, 4])).toThrow(/perturb: matrices must be a Float64Array of \(offset, rows, cols\) triples/);
    expect(call(2, Float64Array.of(0, 4))).toThrow(RangeError);
    expect(call(2, Float64Array.of(-1, 4, 4))).toThrow(/matrices\[0\]\.offset/);
    expect(call(2, Float64Array.of(0, 0, 4))).toThrow(/matrices\[0\]\.rows must be a positive integer/);
    expect(call(2, Float64Array.of(0, 4, 2.5))).toThrow(/matrices\[0\]\.cols/);
    expect(call(2, Float64Array.of(0, 4, 4, 15, 2, 2))).toThrow(/matrices\[1\]\.offset overlaps or precedes the previous matrix/);
    expect(call(2, Float64Array.of(2 ** 53 - 10, 4, 4))).toThrow(/matrices\[0\]: offset \+ rows\*cols must be <= 2\^53 - 1/);
    expect(call(2, Float64Array.of(2 ** 53 - 40, 1, 30))).toThrow(/matrices\[0\]: offset \+ max\(rows, cols\)\*rank/);
    expect(() => native.perturb(slab, 1, 2, 1, 0, 0, 64, 3 as 2)).toThrow(/distribution must be 0 \(Gaussian\), 1 \(Rademacher\) or 2 \(low-rank\)/);
    expect(() =>
      native.accumulate(slab, Uint32Array.of(1, 2), Float32Array.of(1), 0, 0, 64, DIST_LOWRANK, 70, new Float64Array(0)),
    ).toThrow(/accumulate: rank must be an integer in \[1, 64\]/);
    expect(Array.from(slab)).toEqual(before);
  });
});

// ---- the generic path, in a child process ------------------------------------------------------------------------

const CHILD_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const [addonPath, dir] = process.argv.slice(1);
const addon = require(addonPath);
const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
const digests = cases.map((c, i) => {
  const bytes = fs.readFileSync(path.join(dir, 'in-' + i + '.bin'));
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  const slab = new Float32Array(buffer, 4 * c.lead, c.length);
  addon.setThreads(c.threads);
  const m = Float64Array.from(c.matrices);
  if (c.coeffs.length === 1) addon.perturb(slab, c.keys[0], c.keys[1], c.coeffs[0], c.offset, c.start, c.end, 2, c.rank, m);
  else addon.accumulate(slab, Uint32Array.from(c.keys), Float32Array.from(c.coeffs), c.offset, c.start, c.end, 2, c.rank, m);
  return crypto.createHash('sha256').update(new Uint8Array(buffer)).digest('hex');
});
fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ simd: addon.simd(), digests }));
`;

describe('native lowrank, generic path (child process, MEZO_NOISE_SIMD=generic) ≡ TypeScript kernel', () => {
  let dir = '';
  let result: { simd: string; digests: string[] } = { simd: '', digests: [] };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mezo-lowrank-parity-'));
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(CASES));
    CASES.forEach((spec, i) => writeFileSync(join(dir, `in-${i}.bin`), new Uint8Array(makeInput(spec))));
    const env: NodeJS.ProcessEnv = { ...process.env, MEZO_NOISE_SIMD: 'generic' };
    delete env.NODE_OPTIONS;
    const child = spawnSync(process.execPath, ['-e', CHILD_SCRIPT, ADDON_PATH, dir], { env, encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`child process failed (${child.status}): ${child.stderr}`);
    result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as typeof result;
  }, 120_000);

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('dispatched to the generic path', () => {
    expect(result.simd).toBe('generic');
  });

  CASES.forEach((spec, i) => {
    it(`${spec.name}`, () => {
      expect(result.digests[i]).toBe(expectedDigest(spec));
    }, 60_000);
  });
});
