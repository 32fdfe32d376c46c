/**
 * The native addon that loads here (the prebuilt binary for this platform, or build/Release/mezo_noise.node with
 * MEZO_NATIVE_ADDON=built) against the TypeScript kernel, bit for bit.
 *
 * Both native paths are checked: the one this process dispatched to (AVX2 on x86-64 CPUs that have it) runs here,
 * and the portable one runs in a child process started with MEZO_NOISE_SIMD=generic, which the addon reads once at
 * load. The child applies the same cases to the same input bytes and sends the results back through files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jsKernel } from '../../../shared/noise/js-kernel.js';
import { DIST_GAUSSIAN, DIST_RADEMACHER, type DistributionCode } from '../../../shared/noise/kernel.js';
import { nativeAddonReport, type NativeNoiseBinding } from '../../../shared/noise/native-binding.js';

type NativeAddon = NativeNoiseBinding;

const require = createRequire(import.meta.url);
// The file the loader picks: the prebuilt binary for this platform, or build/Release (MEZO_NATIVE_ADDON=built).
const ADDON = nativeAddonReport().loaded;
if (ADDON === undefined) throw new Error(`no native addon loads: ${JSON.stringify(nativeAddonReport().candidates)}`);
const ADDON_PATH = ADDON.path;
const native = require(ADDON_PATH) as NativeAddon;

// ---- cases -------------------------------------------------------------------------------------------------------

interface PerturbSpec {
  kind: 'perturb';
  k0: number;
  k1: number;
  scale: number;
}

interface AccumulateSpec {
  kind: 'accumulate';
  keys: number[];
  coeffs: number[];
}

type CaseSpec = (PerturbSpec | AccumulateSpec) & {
  name: string;
  /** Seed of the slab's random contents. */
  seed: number;
  /** Elements of the Float32Array view, which starts `lead` floats into its buffer and has `trail` floats after. */
  length: number;
  lead: number;
  trail: number;
  offset: number;
  start: number;
  end: number;
  distribution: DistributionCode;
  threads: number;
};

const TWO40 = 2 ** 40;
const TWO53 = 2 ** 53;
const PARALLEL = (1 << 20) + 7; // above the addon's threshold for splitting a range across threads

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

function randomEntries(seed: number, count: number): { keys: number[]; coeffs: number[] } {
  const rand = mulberry32(seed);
  const keys: number[] = [];
  const coeffs: number[] = [];
  for (let k = 0; k < count; k++) {
    // Mix in the extremes of the key words.
    const k0 = k % 5 === 0 ? 0xffffffff : Math.floor(rand() * 2 ** 32);
    const k1 = k % 7 === 3 ? 0 : Math.floor(rand() * 2 ** 32);
    keys.push(k0, k1);
    coeffs.push(Math.fround((rand() < 0.5 ? -1 : 1) * 10 ** (-2 + 2.5 * rand())));
  }
  return { keys, coeffs };
}

function buildCases(): CaseSpec[] {
  const cases: CaseSpec[] = [];
  const base = { lead: 0, trail: 0, threads: 1 };
  for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
    const d = distribution === DIST_GAUSSIAN ? 'gaussian' : 'rademacher';
    const perturb = (name: string, spec: Omit<CaseSpec & PerturbSpec, 'kind' | 'distribution' | 'name'>): void => {
      cases.push({ ...spec, kind: 'perturb', distribution, name: `perturb ${d}: ${name}` });
    };
    const accumulate = (name: string, spec: Omit<CaseSpec & AccumulateSpec, 'kind' | 'distribution' | 'name'>): void => {
      cases.push({ ...spec, kind: 'accumulate', distribution, name: `accumulate ${d}: ${name}` });
    };
    perturb('whole slab, offset 0, k1 = 0', {
      ...base, seed: 1, length: 1_000_003, k0: 0x12345678, k1: 0, scale: 1, offset: 0, start: 0, end: 1_000_003,
    });
    perturb('k0 = k1 = 0xffffffff, odd offset, sub-range, 2 threads', {
      ...base, seed: 2, length: PARALLEL, k0: 0xffffffff, k1: 0xffffffff, scale: -0.75, offset: 3, start: 5,
      end: PARALLEL - 2, threads: 2,
    });
    perturb('offset crossing 2^40 (counter high word, low-word carry)', {
      ...base, seed: 3, length: 1_000_001, k0: 0, k1: 0x9e3779b9, scale: 2.5, offset: TWO40 - 500_001, start: 0,
      end: 1_000_001,
    });
    perturb('offset crossing 2^40, odd start and end, 2 threads', {
      ...base, seed: 4, length: PARALLEL + 2, k0: 0xffffffff, k1: 1, scale: 0.1, offset: TWO40 - 524_287, start: 1,
      end: PARALLEL + 1, threads: 2,
    });
    perturb('last global indices below 2^53', {
      ...base, seed: 5, length: 65_537, k0: 0xdeadbeef, k1: 0xcafef00d, scale: 1.5, offset: TWO53 - 65_537,
      start: 1, end: 65_536,
    });
    perturb('view with a byteOffset into a larger buffer', {
      ...base, seed: 6, length: 300_001, lead: 3, trail: 5, k0: 0xdeadbeef, k1: 1, scale: 0.5, offset: 7, start: 3,
      end: 299_990,
    });
    accumulate('1 entry', {
      ...base, seed: 7, length: 1_000_003, ...randomEntries(70, 1), offset: 1, start: 0, end: 1_000_003,
    });
    accumulate('7 entries, offset crossing 2^40, sub-range', {
      ...base, seed: 8, length: 300_007, ...randomEntries(80, 7), offset: TWO40 - 12_345, start: 3, end: 300_006,
    });
    accumulate('64 entries, odd offset', {
      ...base, seed: 9, length: 50_021, ...randomEntries(90, 64), offset: 13, start: 0, end: 50_021,
    });
    accumulate('8 entries, 2 threads', {
      ...base, seed: 10, length: PARALLEL, ...randomEntries(100, 8), offset: 129, start: 2, end: PARALLEL - 1,
      threads: 2,
    });
  }
  return cases;
}

const CASES = buildCases();

/**
 * The case's input buffer: random non-zero floats in the view and around it, of both signs and log-uniform
 * magnitudes from 1e-6 to 10, so that most sums keep most of the noise's bits (a slab much larger than the noise
 * would hide differences in its low bits).
 */
function makeInput(spec: CaseSpec): ArrayBuffer {
  const floats = new Float32Array(spec.lead + spec.length + spec.trail);
  const rand = mulberry32(spec.seed);
  for (let i = 0; i < floats.length; i++) floats[i] = (rand() < 0.5 ? -1 : 1) * 10 ** (-6 + 7 * rand());
  return floats.buffer;
}

const viewOf = (buffer: ArrayBuffer, spec: CaseSpec): Float32Array => new Float32Array(buffer, 4 * spec.lead, spec.length);

function applyJs(spec: CaseSpec, slab: Float32Array): void {
  if (spec.kind === 'perturb') {
    jsKernel.perturb(slab, spec.k0, spec.k1, spec.scale, spec.offset, spec.start, spec.end, spec.distribution);
  } else {
    const keys = Uint32Array.from(spec.keys);
    const coeffs = Float32Array.from(spec.coeffs);
    jsKernel.accumulate(slab, keys, coeffs, spec.offset, spec.start, spec.end, spec.distribution);
  }
}

function applyNative(addon: NativeAddon, spec: CaseSpec, slab: Float32Array): void {
  addon.setThreads(spec.threads);
  if (spec.kind === 'perturb') {
    addon.perturb(slab, spec.k0, spec.k1, spec.scale, spec.offset, spec.start, spec.end, spec.distribution);
  } else {
    const keys = Uint32Array.from(spec.keys);
    const coeffs = Float32Array.from(spec.coeffs);
    addon.accumulate(slab, keys, coeffs, spec.offset, spec.start, spec.end, spec.distribution);
  }
}

/** Index of the first differing 32-bit word, or −1; avoids handing megabyte arrays to the matcher's diff. */
function firstMismatch(actual: Uint32Array, expected: Uint32Array): number {
  if (actual.length !== expected.length) return Math.min(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) return i;
  return -1;
}

function expectSameBits(actual: ArrayBufferLike, expected: ArrayBufferLike, what: string): void {
  const a = new Uint32Array(actual);
  const e = new Uint32Array(expected);
  const at = firstMismatch(a, e);
  const detail = at < 0 ? '' : ` (first difference at word ${at}: ${a[at]?.toString(16)} vs ${e[at]?.toString(16)})`;
  expect(at, `${what}${detail}`).toBe(-1);
}

const expectedCache = new Map<CaseSpec, ArrayBuffer>();

/** The TypeScript kernel's result for the case (the whole buffer, so untouched neighbours are compared too). */
function expectedFor(spec: CaseSpec): ArrayBuffer {
  let result = expectedCache.get(spec);
  if (result === undefined) {
    result = makeInput(spec);
    applyJs(spec, viewOf(result, spec));
    expectedCache.set(spec, result);
  }
  return result;
}

// ---- the generic path, in a child process --------------------------------------------------------------------

const CHILD_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const [addonPath, dir] = process.argv.slice(1);
const addon = require(addonPath);
const spec = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
const result = { simd: addon.simd(), philox: [] };
for (const [counter, key] of spec.philox) {
  const out = new Uint32Array(4);
  addon.philox(out, Uint32Array.from(counter), Uint32Array.from(key));
  result.philox.push(Array.from(out));
}
spec.cases.forEach((c, i) => {
  const bytes = fs.readFileSync(path.join(dir, 'in-' + i + '.bin'));
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  const slab = new Float32Array(buffer, 4 * c.lead, c.length);
  addon.setThreads(c.threads);
  if (c.kind === 'perturb') addon.perturb(slab, c.k0, c.k1, c.scale, c.offset, c.start, c.end, c.distribution);
  else addon.accumulate(slab, Uint32Array.from(c.keys), Float32Array.from(c.coeffs), c.offset, c.start, c.end, c.distribution);
  fs.writeFileSync(path.join(dir, 'out-' + i + '.bin'), new Uint8Array(buffer));
});
fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify(result));
`;

// ---- philox known answers (Random123) ----------------------------------------------------------------------------

const PHILOX_KNOWN_ANSWERS: Array<{ counter: number[]; key: number[]; expected: number[] }> = [
  { counter: [0, 0, 0, 0], key: [0, 0], expected: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  {
    counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    expected: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  },
  {
    counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    expected: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  },
];

function hostHasAvx2(): boolean {
  if (process.arch !== 'x64' || process.platform !== 'linux' || !existsSync('/proc/cpuinfo')) return false;
  return /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

afterEach(() => {
  native.setThreads(1);
});

describe('native noise addon: dispatch', () => {
  it('reports the vector path it chose', () => {
    // AArch64 always has NEON, so the arm64 build picks it without a CPU check.
    const vector = process.arch === 'arm64' ? 'neon' : hostHasAvx2() ? 'avx2' : 'generic';
    const expected = process.env.MEZO_NOISE_SIMD === 'generic' ? 'generic' : vector;
    expect(native.simd()).toBe(expected);
  });
});

describe(`native noise addon, ${native.simd()} path (this process) ≡ TypeScript kernel`, () => {
  it('philox matches the Random123 known answers', () => {
    for (const { counter, key, expected } of PHILOX_KNOWN_ANSWERS) {
      const out = new Uint32Array(4);
      native.philox(out, Uint32Array.from(counter), Uint32Array.from(key));
      expect(Array.from(out)).toEqual(expected);
      const js = new Uint32Array(4);
      jsKernel.philox(js, Uint32Array.from(counter), Uint32Array.from(key));
      expect(Array.from(js)).toEqual(expected);
    }
  });

  it('philox agrees with the TypeScript Philox on random counters and keys', () => {
    const rand = mulberry32(42);
    const word = (): number => Math.floor(rand() * 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const counter = Uint32Array.of(word(), word(), word(), word());
      const key = Uint32Array.of(word(), word());
      const a = new Uint32Array(4);
      const b = new Uint32Array(4);
      native.philox(a, counter, key);
      jsKernel.philox(b, counter, key);
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  for (const spec of CASES) {
    it(`${spec.name} (${spec.length} elements, threads ${spec.threads})`, () => {
      const buffer = makeInput(spec);
      applyNative(native, spec, viewOf(buffer, spec));
      expectSameBits(buffer, expectedFor(spec), spec.name);
    }, 60_000);
  }

  it('every start/end pair around ragged heads and tails matches, for odd and even offsets', () => {
    const length = 300;
    for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
      for (const offset of [0, 5, 126, TWO40 - 131]) {
        const input = Float32Array.from({ length }, (_, i) => Math.fround(Math.cos(i) * 2 + 0.01));
        for (let start = 0; start < 10; start++) {
          for (let end = Math.max(start, 160); end <= length; end += end < 290 ? 43 : 1) {
            const a = input.slice();
            const b = input.slice();
            native.perturb(a, 0x0badf00d, 0x12, 0.25, offset, start, end, distribution);
            jsKernel.perturb(b, 0x0badf00d, 0x12, 0.25, offset, start, end, distribution);
            expectSameBits(a.buffer, b.buffer, `offset ${offset} [${start}, ${end}) distribution ${distribution}`);
          }
        }
      }
    }
  });

  it('accumulate ≡ the same entries applied as sequential perturbs (native and TypeScript)', () => {
    for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
      for (const count of [1, 7, 64]) {
        const { keys, coeffs } = randomEntries(500 + count, count);
        const length = 20_011;
        const input = Float32Array.from({ length }, (_, i) => Math.fround(Math.sin(i) + 1.5));
        const fused = input.slice();
        native.accumulate(fused, Uint32Array.from(keys), Float32Array.from(coeffs), 17, 1, length - 3, distribution);
        const sequential = input.slice();
        const jsSequential = input.slice();
        const jsFused = input.slice();
        jsKernel.accumulate(jsFused, Uint32Array.from(keys), Float32Array.from(coeffs), 17, 1, length - 3, distribution);
        for (let k = 0; k < count; k++) {
          native.perturb(sequential, keys[2 * k]!, keys[2 * k + 1]!, coeffs[k]!, 17, 1, length - 3, distribution);
          jsKernel.perturb(jsSequential, keys[2 * k]!, keys[2 * k + 1]!, coeffs[k]!, 17, 1, length - 3, distribution);
        }
        const what = `${count} entries, distribution ${distribution}`;
        expectSameBits(fused.buffer, sequential.buffer, `native accumulate vs native perturbs: ${what}`);
        expectSameBits(fused.buffer, jsFused.buffer, `native accumulate vs TypeScript accumulate: ${what}`);
        expectSameBits(jsSequential.buffer, jsFused.buffer, `TypeScript perturbs vs TypeScript accumulate: ${what}`);
      }
    }
  });

  it('gives the same bits whatever the thread count', () => {
    const length = (1 << 21) + 13;
    const input = Float32Array.from({ length }, (_, i) => (i % 97) * 0.01 - 0.5);
    const { keys, coeffs } = randomEntries(77, 3);
    for (const distribution of [DIST_GAUSSIAN, DIST_RADEMACHER] as const) {
      let reference: Float32Array | undefined;
      for (const threads of [1, 2, 3, 8, 256]) {
        native.setThreads(threads);
        expect(native.getThreads()).toBe(threads);
        const slab = input.slice();
        native.perturb(slab, 99, 100, 0.01, 2 ** 33 + 1, 3, length - 5, distribution);
        native.accumulate(slab, Uint32Array.from(keys), Float32Array.from(coeffs), 2 ** 33 + 1, 0, length, distribution);
        if (reference === undefined) reference = slab;
        else expectSameBits(slab.buffer, reference.buffer, `threads ${threads}, distribution ${distribution}`);
      }
    }
  }, 60_000);

  it('leaves the slab alone for empty ranges and empty accumulations', () => {
    const slab = Float32Array.from({ length: 64 }, (_, i) => i + 0.5);
    const before = slab.slice();
    native.perturb(slab, 1, 2, 1, 0, 10, 10, DIST_GAUSSIAN);
    native.accumulate(slab, new Uint32Array(0), new Float32Array(0), 0, 0, 64, DIST_RADEMACHER);
    native.perturb(new Float32Array(0), 1, 2, 1, 0, 0, 0, DIST_GAUSSIAN);
    expectSameBits(slab.buffer, before.buffer, 'empty operations');
  });

  it('addScalar is the plain in-place add', () => {
    const slab = Float32Array.from({ length: 1001 }, (_, i) => i * 0.1);
    const expected = slab.map((v) => Math.fround(v + Math.fround(0.3)));
    native.addScalar(slab, 0.3);
    expectSameBits(slab.buffer, expected.buffer, 'addScalar');
  });
});

describe('native noise addon, generic path (child process, MEZO_NOISE_SIMD=generic) ≡ TypeScript kernel', () => {
  let dir = '';
  let result: { simd: string; philox: number[][] } = { simd: '', philox: [] };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mezo-noise-parity-'));
    const philox = PHILOX_KNOWN_ANSWERS.map(({ counter, key }) => [counter, key]);
    writeFileSync(join(dir, 'cases.json'), JSON.stringify({ philox, cases: CASES }));
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

  it('philox matches the Random123 known answers', () => {
    expect(result.philox).toEqual(PHILOX_KNOWN_ANSWERS.map(({ expected }) => expected));
  });

  CASES.forEach((spec, i) => {
    it(`${spec.name} (${spec.length} elements, threads ${spec.threads})`, () => {
      const bytes = readFileSync(join(dir, `out-${i}.bin`));
      const actual = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      expectSameBits(actual, expectedFor(spec), `generic ${spec.name}`);
    }, 60_000);
  });
});

// ---- argument validation -------------------------------------------------------------------------------------

describe('native noise addon: argument validation', () => {
  const LENGTH = 100;

  /** Runs `call` on a fresh slab, expects the error type and message, and checks that not a bit changed. */
  function expectRejected(
    call: (slab: Float32Array) => void,
    type: typeof TypeError | typeof RangeError,
    message: RegExp,
  ): void {
    const slab = Float32Array.from({ length: LENGTH }, (_, i) => Math.sin(i) + 2);
    const before = slab.slice();
    let caught: unknown;
    try {
      call(slab);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(type);
    expect((caught as Error).message).toMatch(message);
    expectSameBits(slab.buffer, before.buffer, `slab after ${message}`);
  }

  type PerturbArgs = [unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown];
  const perturbWith = (slab: Float32Array, patch: Partial<Record<number, unknown>>): void => {
    const args: PerturbArgs = [slab, 1, 2, 0.5, 0, 0, LENGTH, DIST_GAUSSIAN];
    for (const [at, value] of Object.entries(patch)) args[Number(at)] = value;
    (native.perturb as (...a: unknown[]) => void)(...args);
  };
  const accumulateWith = (slab: Float32Array, patch: Partial<Record<number, unknown>>): void => {
    const args: unknown[] = [slab, Uint32Array.of(1, 2, 3, 4), Float32Array.of(0.5, -0.25), 0, 0, LENGTH, DIST_RADEMACHER];
    for (const [at, value] of Object.entries(patch)) args[Number(at)] = value;
    (native.accumulate as (...a: unknown[]) => void)(...args);
  };

  it('perturb: slab', () => {
    for (const bad of [new Float64Array(LENGTH), [1, 2, 3], new Uint32Array(LENGTH), undefined, null, 'slab']) {
      expect(() => perturbWith(new Float32Array(1), { 0: bad })).toThrow(TypeError);
      expect(() => perturbWith(new Float32Array(1), { 0: bad })).toThrow(/^perturb: slab must be a Float32Array/);
    }
  });

  it('perturb: k0 and k1', () => {
    for (const [at, name] of [[1, 'k0'], [2, 'k1']] as const) {
      const message = new RegExp(`^perturb: ${name} must be an integer in \\[0, 2\\^32\\)`);
      for (const bad of [-1, 2 ** 32, 1.5, NaN, Infinity]) expectRejected((s) => perturbWith(s, { [at]: bad }), RangeError, message);
      for (const bad of ['1', 1n, undefined, {}]) expectRejected((s) => perturbWith(s, { [at]: bad }), TypeError, message);
    }
  });

  it('perturb: scale', () => {
    for (const bad of [NaN, Infinity, -Infinity, 1e39, -3.5e38]) {
      expectRejected((s) => perturbWith(s, { 3: bad }), RangeError, /^perturb: scale must be finite/);
    }
    for (const bad of ['0.5', undefined, 1n]) expectRejected((s) => perturbWith(s, { 3: bad }), TypeError, /^perturb: scale/);
  });

  it('perturb: offset', () => {
    const message = /^perturb: offset must be a non-negative integer and offset \+ slab\.length <= 2\^53/;
    for (const bad of [-1, 0.5, NaN, Infinity, TWO53, TWO53 - LENGTH + 1]) {
      expectRejected((s) => perturbWith(s, { 4: bad }), RangeError, message);
    }
    expectRejected((s) => perturbWith(s, { 4: '0' }), TypeError, message);
    // The largest offset allowed for this slab is accepted.
    const slab = new Float32Array(LENGTH);
    expect(() => perturbWith(slab, { 4: TWO53 - LENGTH })).not.toThrow();
  });

  it('perturb: start and end', () => {
    const startMessage = /^perturb: start must be an integer with 0 <= start <= slab\.length/;
    const endMessage = /^perturb: end must be an integer with start <= end <= slab\.length/;
    for (const bad of [-1, LENGTH + 1, 0.5, NaN]) expectRejected((s) => perturbWith(s, { 5: bad }), RangeError, startMessage);
    expectRejected((s) => perturbWith(s, { 5: '0' }), TypeError, startMessage);
    for (const bad of [LENGTH + 1, 1.5, -1, NaN]) expectRejected((s) => perturbWith(s, { 6: bad }), RangeError, endMessage);
    expectRejected((s) => perturbWith(s, { 5: 50, 6: 49 }), RangeError, endMessage);
    expectRejected((s) => perturbWith(s, { 6: null }), TypeError, endMessage);
  });

  it('perturb: distribution', () => {
    const message = /^perturb: distribution must be 0 \(Gaussian\), 1 \(Rademacher\) or 2 \(low-rank\)/;
    for (const bad of [3, -1, 0.5, NaN]) expectRejected((s) => perturbWith(s, { 7: bad }), RangeError, message);
    for (const bad of ['0', null, undefined, true]) expectRejected((s) => perturbWith(s, { 7: bad }), TypeError, message);
  });

  it('accumulate: every argument', () => {
    expectRejected((s) => accumulateWith(s, { 0: new Float64Array(4) }), TypeError, /^accumulate: slab must be a Float32Array/);
    expectRejected((s) => accumulateWith(s, { 1: Int32Array.of(1, 2, 3, 4) }), TypeError, /^accumulate: keys must be a Uint32Array/);
    expectRejected((s) => accumulateWith(s, { 1: [1, 2, 3, 4] }), TypeError, /^accumulate: keys must be a Uint32Array/);
    expectRejected((s) => accumulateWith(s, { 2: Float64Array.of(1, 2) }), TypeError, /^accumulate: coeffs must be a Float32Array/);
    expectRejected((s) => accumulateWith(s, { 1: Uint32Array.of(1, 2, 3) }), RangeError, /^accumulate: keys\.length must be 2 \* coeffs\.length/);
    expectRejected((s) => accumulateWith(s, { 2: Float32Array.of(1) }), RangeError, /^accumulate: keys\.length must be 2 \* coeffs\.length/);
    for (const bad of [NaN, Infinity, -Infinity]) {
      expectRejected((s) => accumulateWith(s, { 2: Float32Array.of(0.5, bad) }), RangeError, /^accumulate: coeffs must hold finite values/);
    }
    expectRejected((s) => accumulateWith(s, { 3: -1 }), RangeError, /^accumulate: offset must be a non-negative integer/);
    expectRejected((s) => accumulateWith(s, { 3: TWO53 }), RangeError, /^accumulate: offset/);
    expectRejected((s) => accumulateWith(s, { 4: LENGTH + 1 }), RangeError, /^accumulate: start must be an integer/);
    expectRejected((s) => accumulateWith(s, { 5: LENGTH + 1 }), RangeError, /^accumulate: end must be an integer/);
    expectRejected((s) => accumulateWith(s, { 4: 3, 5: 2 }), RangeError, /^accumulate: end must be an integer/);
    expectRejected((s) => accumulateWith(s, { 6: 3 }), RangeError, /^accumulate: distribution must be 0/);
    expectRejected((s) => accumulateWith(s, { 6: '1' }), TypeError, /^accumulate: distribution must be 0/);
  });

  it('philox: out, counter and key', () => {
    const ok4 = (): Uint32Array => new Uint32Array(4);
    const key = (): Uint32Array => new Uint32Array(2);
    const call = native.philox as (...a: unknown[]) => void;
    expect(() => call(new Uint32Array(3), ok4(), key())).toThrow(RangeError);
    expect(() => call(new Uint32Array(3), ok4(), key())).toThrow(/^philox: out must be a Uint32Array of length 4/);
    expect(() => call(new Int32Array(4), ok4(), key())).toThrow(TypeError);
    expect(() => call(ok4(), new Float32Array(4), key())).toThrow(/^philox: counter must be a Uint32Array of length 4/);
    expect(() => call(ok4(), ok4(), new Uint32Array(3))).toThrow(/^philox: key must be a Uint32Array of length 2/);
    expect(() => call(ok4(), ok4(), undefined)).toThrow(/^philox: key must be a Uint32Array of length 2/);
    const out = Uint32Array.of(7, 7, 7, 7);
    expect(() => call(out, ok4(), new Uint32Array(1))).toThrow(/^philox: key/);
    expect(Array.from(out)).toEqual([7, 7, 7, 7]);
  });

  it('setThreads: threads in [1, 256]', () => {
    native.setThreads(4);
    const call = native.setThreads as (...a: unknown[]) => void;
    for (const bad of [0, 257, 1.5, NaN, -1, Infinity]) {
      expect(() => call(bad)).toThrow(RangeError);
      expect(() => call(bad)).toThrow(/^setThreads: threads must be an integer in \[1, 256\]/);
    }
    for (const bad of ['2', undefined, 2n]) expect(() => call(bad)).toThrow(TypeError);
    expect(native.getThreads()).toBe(4);
    native.setThreads(256);
    expect(native.getThreads()).toBe(256);
  });

  it('addScalar: slab and value', () => {
    const call = native.addScalar as (...a: unknown[]) => void;
    expect(() => call(new Float64Array(2), 1)).toThrow(/^addScalar: slab must be a Float32Array/);
    expectRejected((s) => call(s, NaN), RangeError, /^addScalar: value must be finite/);
    expectRejected((s) => call(s, '1'), TypeError, /^addScalar: value must be finite/);
  });
});
