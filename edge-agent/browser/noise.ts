/**
 * The browser bundle's stand-in for shared/noise/index.ts (scripts/build-browser-agent.mjs maps the import here):
 * the same exports, with `noise` an engine whose kernel is the TypeScript one until the page has instantiated the
 * WebAssembly kernel (useKernel), and no native addon. Modules that import `noise` at load time get this engine;
 * a page sets its kernel before it builds an agent.
 */
import { NoiseEngine } from '../../shared/noise/engine.js';
import { jsKernel } from '../../shared/noise/js-kernel.js';
import type { NoiseKernel } from '../../shared/noise/kernel.js';

export { NoiseEngine, PackedEntries, seedToKey } from '../../shared/noise/engine.js';
export type { Distribution, NoiseOptions, Seed, UpdateEntry } from '../../shared/noise/engine.js';
export type { NoiseKernel } from '../../shared/noise/kernel.js';
export { lowRankLayoutFromTensors } from '../../shared/noise/low-rank.js';
export type { LowRankLayout, LowRankMatrix } from '../../shared/noise/low-rank.js';
export { jsKernel } from '../../shared/noise/js-kernel.js';

export type NoiseImplementation = 'auto' | 'native' | 'js';

export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

const REASON = 'a browser has no native addon';

export function loadNativeKernel(): NoiseKernel {
  throw new NativeAddonError(REASON);
}

export function nativeAddonReport(): { preference: 'auto'; platform: string; candidates: never[] } {
  return { preference: 'auto', platform: 'browser', candidates: [] };
}

let current: NoiseKernel = jsKernel;

/** A kernel that forwards to the current one, so `noise` can switch to WebAssembly once it is instantiated. */
const switching: NoiseKernel = {
  get kind() {
    return current.kind;
  },
  get simd() {
    return current.simd;
  },
  philox: (...args) => current.philox(...args),
  perturb: (...args) => current.perturb(...args),
  accumulate: (...args) => current.accumulate(...args),
  checkSlab: (slab) => current.checkSlab?.(slab),
  setThreads: (threads) => current.setThreads(threads),
  getThreads: () => current.getThreads(),
};

export const noise: NoiseEngine = new NoiseEngine(switching);

/** Makes `noise` use `kernel` (the page's WebAssembly kernel) from now on. */
export function useKernel(kernel: NoiseKernel): void {
  current = kernel;
}

export function createNoiseEngine(implementation: NoiseImplementation = 'auto'): NoiseEngine {
  if (implementation === 'native') throw new NativeAddonError(REASON);
  return implementation === 'js' ? new NoiseEngine(jsKernel) : noise;
}

export function noiseFallbackReason(): string | undefined {
  return current.kind === 'js' ? REASON : undefined;
}
