/**
 * The typed face of the C++ addon (shared/noise/native): the prebuilt binary shipped in prebuilds/ for this
 * platform, or the one node-gyp built into build/Release/mezo_noise.node.
 * Everything that crosses into C++ is declared here once; the addon re-validates each argument itself.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsKernel } from './js-kernel.js';
import { DIST_LOWRANK, type DistributionCode, type NoiseKernel } from './kernel.js';

/** The addon's exports: the kernel operations with the same signatures, plus its vector path and the floor loop. */
export type NativeNoiseBinding = Omit<NoiseKernel, 'kind' | 'simd' | 'perturb' | 'accumulate'> & {
  /** As NoiseKernel.perturb, the low-rank layout passed as its rank and (offset, rows, cols) triples. */
  perturb(
    slab: Float32Array,
    k0: number,
    k1: number,
    scale: number,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
    rank?: number,
    matrices?: Float64Array,
  ): void;
  accumulate(
    slab: Float32Array,
    keys: Uint32Array,
    coeffs: Float32Array,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
    rank?: number,
    matrices?: Float64Array,
  ): void;
  /** Version of the low-rank extension the addon implements; absent in addons built before it. */
  readonly lowRankVersion?: number;
  simd(): string;
  /** slab[i] = f32(slab[i] + f32(value)): the plain read+write loop benchmarks use as the memory floor. */
  addScalar(slab: Float32Array, value: number): void;
};

export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

/** Which addon files `MEZO_NATIVE_ADDON` lets the loader try: both (prebuilt first), or only one kind. */
export type NativeAddonPreference = 'auto' | 'prebuilt' | 'built';

/** One addon file the loader looked at: what it is, where, and why it was passed over (absent for the one used). */
export interface NativeAddonCandidate {
  source: 'prebuilt' | 'built';
  /** Relative to the package root, as `mezo info` prints it. */
  file: string;
  path: string;
  rejected?: string;
}

/** What the loader found: the file it loaded (when one loaded) and every candidate in the order it tried them. */
export interface NativeAddonReport {
  preference: NativeAddonPreference;
  platform: string;
  loaded?: NativeAddonCandidate;
  candidates: NativeAddonCandidate[];
}

/** The package root: two levels up in the source tree, three in dist/. */
function packageRoot(): string {
  for (const rel of ['../../', '../../../']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return fileURLToPath(new URL('../../', import.meta.url));
}

/**
 * The same prebuildify layout scripts/native-addon.mjs writes (prebuilds/<platform>-<arch>/…napi.glibc.node).
 * Only Linux builds are shipped; on musl the glibc file fails to load and the loader moves on.
 */
export function prebuildFile(platform: string, arch: string): string {
  return `prebuilds/${platform}-${arch}/mezo_noise.napi.glibc.node`;
}

function preferenceFromEnv(): NativeAddonPreference {
  const value = process.env.MEZO_NATIVE_ADDON ?? 'auto';
  if (value === 'auto' || value === 'prebuilt' || value === 'built') return value;
  // A TypeError, not a NativeAddonError: a misspelt setting fails loudly instead of falling back to TypeScript.
  throw new TypeError(`MEZO_NATIVE_ADDON must be 'auto', 'prebuilt' or 'built', got ${JSON.stringify(value)}`);
}

let cached: { report: NativeAddonReport; binding?: NativeNoiseBinding; cause?: unknown } | undefined;

/**
 * Finds and loads the addon once per process: the prebuilt binary shipped for this platform first (it needs no
 * compiler, and its bits are pinned by prebuilds/manifest.json), then the one node-gyp built on this machine
 * (build/Release: platforms without a prebuilt, or a C++ change not yet prebuilt — MEZO_NATIVE_ADDON=built
 * picks it over the prebuilt). Each file passed over keeps its reason for `mezo info`.
 */
function resolveAddon(): { report: NativeAddonReport; binding?: NativeNoiseBinding; cause?: unknown } {
  if (cached) return cached;
  const preference = preferenceFromEnv();
  const root = packageRoot();
  const platform = `${process.platform}-${process.arch}`;
  const kinds: Array<NativeAddonCandidate['source']> =
    preference === 'auto' ? ['prebuilt', 'built'] : [preference];
  const candidates: NativeAddonCandidate[] = kinds.map((source) => {
    const file = source === 'prebuilt' ? prebuildFile(process.platform, process.arch) : 'build/Release/mezo_noise.node';
    return { source, file, path: join(root, file) };
  });
  const require = createRequire(import.meta.url);
  let binding: NativeNoiseBinding | undefined;
  let loaded: NativeAddonCandidate | undefined;
  let loadError: unknown;
  for (const candidate of candidates) {
    if (!existsSync(candidate.path)) {
      candidate.rejected =
        candidate.source === 'prebuilt' ? `no prebuilt binary for ${platform} in this package` : 'not built on this machine';
      continue;
    }
    try {
      binding = require(candidate.path) as NativeNoiseBinding;
      binding.simd();
      loaded = candidate;
      break;
    } catch (cause) {
      binding = undefined;
      loadError = cause;
      candidate.rejected = `failed to load: ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`;
    }
  }
  cached = { report: { preference, platform, loaded, candidates }, binding, cause: loadError };
  return cached;
}

/** Which addon file runs (or why none does): for `mezo info` and logs. Loads the addon if not done yet. */
export function nativeAddonReport(): NativeAddonReport {
  return resolveAddon().report;
}

/** Loads the addon; throws NativeAddonError naming every file tried and why it was passed over. */
export function loadNativeKernel(): NoiseKernel {
  const { report, binding, cause } = resolveAddon();
  if (binding === undefined) {
    const reasons = report.candidates.map((c) => `${c.file}: ${c.rejected}`).join('; ');
    throw new NativeAddonError(
      `native noise addon unavailable (${reasons}); run \`npm run build:native\` on a machine with a C++ toolchain`,
      { cause },
    );
  }
  // An addon built before the low-rank extension hands lowrank calls to the TypeScript kernel (same bits).
  const lowRankNative = binding.lowRankVersion === 1;
  const { perturb, accumulate } = binding;
  // N-API functions do not use `this`, so the exports serve as the kernel's methods directly.
  return {
    kind: 'native',
    simd: binding.simd(),
    philox: binding.philox,
    perturb(slab, k0, k1, scale, offset, start, end, distribution, lowRank) {
      if (distribution !== DIST_LOWRANK) perturb(slab, k0, k1, scale, offset, start, end, distribution);
      else if (lowRankNative) perturb(slab, k0, k1, scale, offset, start, end, distribution, lowRank?.rank, lowRank?.matrices);
      else jsKernel.perturb(slab, k0, k1, scale, offset, start, end, distribution, lowRank);
    },
    accumulate(slab, keys, coeffs, offset, start, end, distribution, lowRank) {
      if (distribution !== DIST_LOWRANK) accumulate(slab, keys, coeffs, offset, start, end, distribution);
      else if (lowRankNative) {
        accumulate(slab, keys, coeffs, offset, start, end, distribution, lowRank?.rank, lowRank?.matrices);
      } else jsKernel.accumulate(slab, keys, coeffs, offset, start, end, distribution, lowRank);
    },
    setThreads: binding.setThreads,
    getThreads: binding.getThreads,
  };
}

/**
 * The addon's plain in-place read+write loop (slab[i] += value), the memory floor that benchmarks compare the
 * noise kernels against; undefined when no addon loads.
 */
export function loadNativeFloor(): NativeNoiseBinding['addScalar'] | undefined {
  return resolveAddon().binding?.addScalar;
}
