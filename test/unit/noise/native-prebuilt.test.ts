/**
 * The prebuilt addons committed in prebuilds/: built from the sources in the tree (prebuilds/manifest.json), the
 * files the manifest records, for the architecture their directory names; the x64 one gives the TypeScript
 * kernel's bits (and the same as an addon built here, when there is one); and the loader picks the prebuilt first
 * and says so, honours MEZO_NATIVE_ADDON, and rejects a misspelt value.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../../shared/noise/js-kernel.js';
import { DIST_GAUSSIAN, DIST_RADEMACHER } from '../../../shared/noise/kernel.js';
import { prebuildFile, type NativeNoiseBinding } from '../../../shared/noise/native-binding.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(join(ROOT, 'prebuilds/manifest.json'), 'utf8')) as {
  sources: string;
  files: Record<string, { sha256: string; bytes: number }>;
};
const golden = JSON.parse(readFileSync(join(ROOT, 'test/unit/noise/golden-vectors.json'), 'utf8')) as {
  count: number;
  vectors: Array<{ distribution: 'gaussian' | 'rademacher'; seed: string; offset: number; bits: string[] }>;
  lowrank: {
    matrices: Array<{ offset: number; rows: number; cols: number }>;
    count: number;
    vectors: Array<{ rank: number; seed: string; bits: string[] }>;
  };
};
const BUILT = join(ROOT, 'build/Release/mezo_noise.node');
const ELF_MACHINE = { x64: 62, arm64: 183 } as const;

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('committed prebuilds', () => {
  it('were built from the C++ sources in the tree (else: npm run prebuilds)', () => {
    const run = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import('./scripts/native-addon.mjs').then((m) => console.log(m.sourcesHash()))"],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(manifest.sources).toBe(run.stdout.trim());
  });

  for (const arch of ['x64', 'arm64'] as const) {
    it(`linux-${arch}: the file the manifest records, an ELF for ${arch}`, () => {
      const file = prebuildFile('linux', arch);
      const entry = manifest.files[file.replace(/^prebuilds\//, '')];
      expect(entry, `manifest entry for ${file}`).toBeDefined();
      const bytes = readFileSync(join(ROOT, file));
      expect(sha256(join(ROOT, file))).toBe(entry!.sha256);
      expect(bytes.length).toBe(entry!.bytes);
      expect(bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(bytes.readUInt16LE(18)).toBe(ELF_MACHINE[arch]);
    });
  }
});

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('the linux-x64 prebuilt', () => {
  const prebuilt = require(join(ROOT, prebuildFile('linux', 'x64'))) as NativeNoiseBinding;

  it('reproduces every golden vector', () => {
    for (const v of golden.vectors) {
      const seed = BigInt(v.seed);
      const k0 = Number(seed & 0xffffffffn);
      const k1 = Number(seed >> 32n);
      const dist = v.distribution === 'gaussian' ? DIST_GAUSSIAN : DIST_RADEMACHER;
      const z = new Float32Array(golden.count);
      prebuilt.perturb(z, k0, k1, 1, v.offset, 0, z.length, dist);
      const bits = Array.from(new Uint32Array(z.buffer), (w) => w.toString(16).padStart(8, '0'));
      expect(bits, `${v.distribution} seed ${v.seed} offset ${v.offset}`).toEqual(v.bits);
    }
  });

  it('implements the low-rank extension and reproduces its golden vectors', () => {
    expect(prebuilt.lowRankVersion).toBe(1);
    const matrices = Float64Array.from(golden.lowrank.matrices.flatMap((m) => [m.offset, m.rows, m.cols]));
    for (const v of golden.lowrank.vectors) {
      const seed = BigInt(v.seed);
      const z = new Float32Array(golden.lowrank.count);
      prebuilt.perturb(z, Number(seed & 0xffffffffn), Number(seed >> 32n), 1, 0, 0, z.length, 2, v.rank, matrices);
      const bits = Array.from(new Uint32Array(z.buffer), (w) => w.toString(16).padStart(8, '0'));
      expect(bits, `lowrank rank ${v.rank} seed ${v.seed}`).toEqual(v.bits);
    }
  });

  /** The v1 calls both the addon's exports and the TypeScript kernel take (no low-rank layout). */
  interface V1Kernel {
    perturb(slab: Float32Array, k0: number, k1: number, s: number, o: number, a: number, b: number, d: 0 | 1): void;
    accumulate(slab: Float32Array, keys: Uint32Array, c: Float32Array, o: number, a: number, b: number, d: 0 | 1): void;
  }

  /** A perturb then a 12-entry accumulate over 2^20 + 13 elements at an odd global offset. */
  function apply(kernel: V1Kernel, dist: 0 | 1): Uint8Array {
    const length = (1 << 20) + 13;
    const slab = Float32Array.from({ length }, (_, i) => Math.fround(Math.sin(i) * 0.05));
    kernel.perturb(slab, 0xdeadbeef, 7, 1e-3, 2 ** 35 + 3, 1, length - 2, dist);
    const keys = Uint32Array.from({ length: 24 }, (_, i) => (i * 0x9e3779b9 + 1) >>> 0);
    const coeffs = Float32Array.from({ length: 12 }, (_, i) => (i % 3 ? 1 : -1) * 2e-4 * (i + 1));
    kernel.accumulate(slab, keys, coeffs, 2 ** 35 + 3, 0, length, dist);
    return new Uint8Array(slab.buffer);
  }

  for (const [name, dist] of [['gaussian', DIST_GAUSSIAN], ['rademacher', DIST_RADEMACHER]] as const) {
    it(`${name}: the same bits as the TypeScript kernel${existsSync(BUILT) ? ' and the addon built here' : ''}`, () => {
      const expected = createHash('sha256').update(apply(jsKernel, dist)).digest('hex');
      expect(createHash('sha256').update(apply(prebuilt, dist)).digest('hex')).toBe(expected);
      if (existsSync(BUILT)) {
        const built = require(BUILT) as NativeNoiseBinding;
        expect(createHash('sha256').update(apply(built, dist)).digest('hex')).toBe(expected);
      }
    }, 60_000);
  }
});

describe('the loader, seen through mezo info', () => {
  function info(env: NodeJS.ProcessEnv): { status: number | null; json?: Record<string, unknown>; stderr: string } {
    const run = spawnSync(process.execPath, [join(ROOT, 'bin/mezo.js'), 'info', '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, MEZO_LOG_LEVEL: 'silent', MEZO_NOISE: 'auto', ...env },
    });
    return { status: run.status, json: run.status === 0 ? JSON.parse(run.stdout) : undefined, stderr: run.stderr };
  }
  const shipped = existsSync(join(ROOT, prebuildFile(process.platform, process.arch)));

  it.runIf(shipped)('runs the prebuilt for this platform first and says why', () => {
    const { json, stderr } = info({});
    expect(json, stderr).toMatchObject({
      noise: 'native',
      addon: `prebuilt ${prebuildFile(process.platform, process.arch)}`,
      why: `shipped for ${process.platform}-${process.arch}, no compiler needed`,
    });
  });

  it.runIf(existsSync(BUILT))('MEZO_NATIVE_ADDON=built runs the addon built here', () => {
    const { json, stderr } = info({ MEZO_NATIVE_ADDON: 'built' });
    expect(json, stderr).toMatchObject({ noise: 'native', addon: 'built build/Release/mezo_noise.node' });
  });

  it('MEZO_NOISE=js says the TypeScript kernel runs and which addon it left unused', () => {
    const { json, stderr } = info({ MEZO_NOISE: 'js' });
    expect(json, stderr).toMatchObject({ noise: 'js', why: 'MEZO_NOISE=js asks for it' });
    if (shipped) expect(json!.addon).toBe(`not used, would be prebuilt ${prebuildFile(process.platform, process.arch)}`);
  });

  it('a misspelt MEZO_NATIVE_ADDON fails instead of falling back', () => {
    const { status, stderr } = info({ MEZO_NATIVE_ADDON: 'prebuild' });
    expect(status).not.toBe(0);
    expect(stderr).toContain("MEZO_NATIVE_ADDON must be 'auto', 'prebuilt' or 'built', got \"prebuild\"");
  });
});
