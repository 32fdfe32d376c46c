/**
 * The typed face of the C++ addon (shared/noise/native, built by node-gyp into build/Release/mezo_noise.node).
 * Everything that crosses into C++ is declared here once; the addon re-validates each argument itself.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DistributionCode, NoiseKernel } from './kernel.js';

interface NativeNoiseBinding {
  philox(out: Uint32Array, counter: Uint32Array, key: Uint32Array): void;
  perturb(
    slab: Float32Array,
    k0: number,
    k1: number,
    scale: number,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
  ): void;
  accumulate(
    slab: Float32Array,
    keys: Uint32Array,
    coeffs: Float32Array,
    offset: number,
    start: number,
    end: number,
    distribution: DistributionCode,
  ): void;
  setThreads(threads: number): void;
  getThreads(): number;
  simd(): string;
}

export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

/** Where node-gyp leaves the addon, seen from this file in the source tree and in dist/. */
const CANDIDATES = ['../../build/Release/mezo_noise.node', '../../../build/Release/mezo_noise.node'];

/** Loads the addon; throws NativeAddonError (with the loader's error as cause) when it is missing or broken. */
export function loadNativeKernel(): NoiseKernel {
  const require = createRequire(import.meta.url);
  const path = CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));
  if (path === undefined) {
    throw new NativeAddonError('native noise addon not built (build/Release/mezo_noise.node missing; run `npm run build:native`)');
  }
  let binding: NativeNoiseBinding;
  try {
    binding = require(path) as NativeNoiseBinding;
  } catch (cause) {
    throw new NativeAddonError(`native noise addon at ${path} failed to load`, { cause });
  }
  return {
    kind: 'native',
    simd: binding.simd(),
    philox: (out, counter, key) => binding.philox(out, counter, key),
    perturb: (slab, k0, k1, scale, offset, start, end, distribution) =>
      binding.perturb(slab, k0, k1, scale, offset, start, end, distribution),
    accumulate: (slab, keys, coeffs, offset, start, end, distribution) =>
      binding.accumulate(slab, keys, coeffs, offset, start, end, distribution),
    setThreads: (threads) => binding.setThreads(threads),
    getThreads: () => binding.getThreads(),
  };
}

/**
 * The addon's plain in-place read+write loop (slab[i] += value), the memory floor that benchmarks compare the
 * noise kernels against; undefined when the addon is not built.
 */
export function loadNativeFloor(): ((slab: Float32Array, value: number) => void) | undefined {
  const require = createRequire(import.meta.url);
  const path = CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));
  if (path === undefined) return undefined;
  const binding = require(path) as { addScalar?: (slab: Float32Array, value: number) => void };
  return binding.addScalar;
}
