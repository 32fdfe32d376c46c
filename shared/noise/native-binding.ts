/**
 * The typed face of the C++ addon (shared/noise/native, built by node-gyp into build/Release/mezo_noise.node).
 * Everything that crosses into C++ is declared here once; the addon re-validates each argument itself.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NoiseKernel } from './kernel.js';

/** The addon's exports: the kernel operations with the same signatures, plus its vector path and the floor loop. */
export type NativeNoiseBinding = Omit<NoiseKernel, 'kind' | 'simd'> & {
  simd(): string;
  /** slab[i] = f32(slab[i] + f32(value)): the plain read+write loop benchmarks use as the memory floor. */
  addScalar(slab: Float32Array, value: number): void;
};

export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

/** Where node-gyp leaves the addon, seen from this file in the source tree and in dist/. */
const CANDIDATES = ['../../build/Release/mezo_noise.node', '../../../build/Release/mezo_noise.node'];

function addonPath(): string | undefined {
  return CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));
}

/** Loads the addon; throws NativeAddonError (with the loader's error as cause) when it is missing or broken. */
export function loadNativeKernel(): NoiseKernel {
  const require = createRequire(import.meta.url);
  const path = addonPath();
  if (path === undefined) {
    throw new NativeAddonError('native noise addon not built (build/Release/mezo_noise.node missing; run `npm run build:native`)');
  }
  let binding: NativeNoiseBinding;
  try {
    binding = require(path) as NativeNoiseBinding;
  } catch (cause) {
    throw new NativeAddonError(`native noise addon at ${path} failed to load`, { cause });
  }
  // N-API functions do not use `this`, so the exports serve as the kernel's methods directly.
  return {
    kind: 'native',
    simd: binding.simd(),
    philox: binding.philox,
    perturb: binding.perturb,
    accumulate: binding.accumulate,
    setThreads: binding.setThreads,
    getThreads: binding.getThreads,
  };
}

/**
 * The addon's plain in-place read+write loop (slab[i] += value), the memory floor that benchmarks compare the
 * noise kernels against; undefined when the addon is not built.
 */
export function loadNativeFloor(): NativeNoiseBinding['addScalar'] | undefined {
  const path = addonPath();
  return path === undefined ? undefined : (createRequire(import.meta.url)(path) as NativeNoiseBinding).addScalar;
}
