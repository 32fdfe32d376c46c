/**
 * Portable in-place noise (docs/noise.md). `noise` is the process-wide engine: the native addon when it loads,
 * the bit-identical TypeScript kernel otherwise. MEZO_NOISE=native|js forces one (auto is the default).
 */
import { logger } from '../logger.js';
import { NoiseEngine } from './engine.js';
import { jsKernel } from './js-kernel.js';
import { loadNativeKernel, NativeAddonError } from './native-binding.js';

export { NoiseEngine, PackedEntries, seedToKey } from './engine.js';
export type { Distribution, NoiseOptions, Seed, UpdateEntry } from './engine.js';
export type { NoiseKernel } from './kernel.js';
export { lowRankLayoutFromTensors } from './low-rank.js';
export type { LowRankLayout, LowRankMatrix } from './low-rank.js';
export { jsKernel } from './js-kernel.js';
export { loadNativeKernel, nativeAddonReport, NativeAddonError } from './native-binding.js';
export type { NativeAddonCandidate, NativeAddonReport } from './native-binding.js';

export type NoiseImplementation = 'auto' | 'native' | 'js';

let autoFallbackReason: string | undefined;

/** Builds an engine for the requested implementation; 'auto' falls back to TypeScript with one log line. */
export function createNoiseEngine(implementation: NoiseImplementation = 'auto'): NoiseEngine {
  switch (implementation) {
    case 'js':
      return new NoiseEngine(jsKernel);
    case 'native':
      return new NoiseEngine(loadNativeKernel());
    case 'auto':
      try {
        return new NoiseEngine(loadNativeKernel());
      } catch (err) {
        if (!(err instanceof NativeAddonError)) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        autoFallbackReason = reason;
        logger.warn({ reason }, 'native noise addon unavailable; using the TypeScript kernel (same bits, slower)');
        return new NoiseEngine(jsKernel);
      }
    default:
      throw new TypeError(`noise implementation must be 'auto', 'native' or 'js', got ${String(implementation)}`);
  }
}

function implementationFromEnv(): NoiseImplementation {
  const value = process.env.MEZO_NOISE ?? 'auto';
  if (value === 'auto' || value === 'native' || value === 'js') return value;
  throw new TypeError(`MEZO_NOISE must be 'auto', 'native' or 'js', got ${JSON.stringify(value)}`);
}

export const noise: NoiseEngine = createNoiseEngine(implementationFromEnv());

/** Why `noise` runs the TypeScript kernel (MEZO_NOISE=js, or why no addon loaded); undefined when it is native. */
export function noiseFallbackReason(): string | undefined {
  if (noise.kind === 'native') return undefined;
  return process.env.MEZO_NOISE === 'js' ? 'MEZO_NOISE=js asks for it' : autoFallbackReason;
}
