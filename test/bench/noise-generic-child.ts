/**
 * The portable native kernel, timed in its own process: the addon picks its vector path once, at load, so
 * MEZO_NOISE_SIMD=generic (set by the parent) must be in place before it loads. Forked by noise-bench.ts.
 */
import { createNoiseEngine } from '../../shared/noise/index.js';
import { reportToParent, time, type Timing } from './harness.js';

export interface GenericChildConfig {
  elements: number;
  repetitions: number;
}

export interface GenericChildReport {
  simd: string;
  gaussian: Timing;
  rademacher: Timing;
}

reportToParent(async (config: GenericChildConfig): Promise<GenericChildReport> => {
  const engine = createNoiseEngine('native');
  engine.setThreads(1);
  const slab = new Float32Array(config.elements).fill(0.01);
  return {
    simd: engine.kernel.simd,
    gaussian: time(() => engine.perturb(slab, 42n, 1e-3), { repetitions: config.repetitions }),
    rademacher: time(() => engine.perturb(slab, 42n, 1e-3, { distribution: 'rademacher' }), { repetitions: config.repetitions }),
  };
});
