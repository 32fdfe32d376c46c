/**
 * Noise engine benchmark (issue targets, as ratios to the memory floor measured in the same process):
 *   native Gaussian perturb ≥ 0.15× the floor's speed, single thread; native Rademacher ≥ 0.8×;
 *   accumulate with 8 entries no slower per entry than one perturb; the WebAssembly kernel's Gaussian ≥ 0.3× the
 *   native kernel's speed. TypeScript figures are reported.
 */
import { createNoiseEngine, jsKernel, NoiseEngine, PackedEntries } from '../../shared/noise/index.js';
import { measureRestoreDrift } from '../../shared/noise/drift.js';
import { loadNativeFloor } from '../../shared/noise/native-binding.js';
import { loadWasmKernel } from '../../shared/noise/wasm-kernel-node.js';
import { fileURLToPath } from 'node:url';
import { forkBenchChild, hostInfo, time, type SuiteResult, type Timing } from './harness.js';
import { checkArm64Bits } from './noise-arm64.js';
import { benchLowRank } from './noise-lowrank.js';
import type { GenericChildConfig, GenericChildReport } from './noise-generic-child.js';

interface Row {
  name: string;
  implementation: string;
  threads: number;
  timing: Timing;
  /** Elements × entries processed per call. */
  elementUpdates: number;
}

/** The memory floor: one in-place read + write of every element, the least any perturbation can cost. */
function floorLoop(slab: Float32Array): void {
  for (let i = 0; i < slab.length; i++) slab[i] = slab[i]! + 1e-9;
}

export async function benchNoise(options: { elements?: number; repetitions?: number } = {}): Promise<SuiteResult> {
  const elements = options.elements ?? 16 * 2 ** 20;
  const repetitions = options.repetitions ?? 7;
  const slab = new Float32Array(elements);
  const js = new NoiseEngine(jsKernel);
  let native: NoiseEngine | undefined;
  try {
    native = createNoiseEngine('native');
  } catch (err) {
    process.stderr.write(`native addon unavailable, reporting TypeScript only: ${(err as Error).message}\n`);
  }
  const entries8 = PackedEntries.from(Array.from({ length: 8 }, (_, k) => ({ seed: BigInt(1000 + k), coeff: 1e-6 })));
  const rows: Row[] = [];
  const add = (name: string, implementation: string, threads: number, run: () => void, updates = elements, reps = repetitions, on: Float32Array = slab): void => {
    on.fill(0.01);
    rows.push({ name, implementation, threads, timing: time(run, { repetitions: reps }), elementUpdates: updates });
  };

  add('floor: read+write loop', 'js', 1, () => floorLoop(slab));
  const nativeFloor = native ? loadNativeFloor() : undefined;
  if (nativeFloor) add('floor: read+write loop', 'native', 1, () => nativeFloor(slab, 1e-9));

  if (native) {
    native.setThreads(1);
    add('perturb gaussian', 'native', 1, () => native.perturb(slab, 42n, 1e-3));
    add('perturb rademacher', 'native', 1, () => native.perturb(slab, 42n, 1e-3, { distribution: 'rademacher' }));
    add('accumulate 8 gaussian', 'native', 1, () => native.accumulate(slab, entries8), elements * 8);
    add('accumulate 8 rademacher', 'native', 1, () => native.accumulate(slab, entries8, { distribution: 'rademacher' }), elements * 8);
    native.setThreads(2);
    add('perturb gaussian', 'native', 2, () => native.perturb(slab, 42n, 1e-3));
    add('accumulate 8 gaussian', 'native', 2, () => native.accumulate(slab, entries8), elements * 8);
    native.setThreads(1);
    const generic = await forkBenchChild<GenericChildConfig, GenericChildReport>(
      fileURLToPath(new URL('./noise-generic-child.js', import.meta.url)),
      { elements, repetitions },
      { MEZO_NOISE_SIMD: 'generic' },
    );
    rows.push({ name: 'perturb gaussian', implementation: `native ${generic.simd}`, threads: 1, timing: generic.gaussian, elementUpdates: elements });
    rows.push({ name: 'perturb rademacher', implementation: `native ${generic.simd}`, threads: 1, timing: generic.rademacher, elementUpdates: elements });
  }
  // The WebAssembly kernel (browsers' kernel) in this process's V8. 'wasm simd128': its SIMD path on a slab in
  // the module's memory (allocateSlab), worked on in place, which is what the browser agent runs; 'wasm simd128
  // copied': the same on a plain Float32Array, copied into the module and back per call (any other caller's
  // path); 'wasm portable': the portable C++ loops alone, in place, to show what the SIMD path gains.
  const wasmKernel = await loadWasmKernel();
  const wasm = new NoiseEngine(wasmKernel);
  const wasmSlab = wasmKernel.allocateSlab(elements);
  if (!wasmKernel.inPlace(wasmSlab)) throw new Error('noise bench: the wasm slab is not worked on in place');
  const oneEntry = PackedEntries.from([{ seed: 42n, coeff: 1e-3 }]);
  const onWasm = (name: string, implementation: string, run: () => void, updates = elements): void =>
    add(name, implementation, 1, run, updates, repetitions, wasmSlab);
  onWasm('perturb gaussian', 'wasm simd128', () => wasm.perturb(wasmSlab, 42n, 1e-3));
  onWasm('perturb rademacher', 'wasm simd128', () => wasm.perturb(wasmSlab, 42n, 1e-3, { distribution: 'rademacher' }));
  onWasm('accumulate 8 gaussian', 'wasm simd128', () => wasm.accumulate(wasmSlab, entries8), elements * 8);
  add('perturb gaussian', 'wasm simd128 copied', 1, () => wasm.perturb(slab, 42n, 1e-3));
  add('perturb rademacher', 'wasm simd128 copied', 1, () => wasm.perturb(slab, 42n, 1e-3, { distribution: 'rademacher' }));
  add('accumulate 8 gaussian', 'wasm simd128 copied', 1, () => wasm.accumulate(slab, entries8), elements * 8);
  onWasm('perturb gaussian', 'wasm portable', () =>
    wasmKernel.accumulatePortable(wasmSlab, oneEntry.keys, oneEntry.coeffs, 0, 0, elements, 0),
  );
  const jsReps = Math.max(3, Math.floor(repetitions / 2));
  add('perturb gaussian', 'js', 1, () => js.perturb(slab, 42n, 1e-3), elements, jsReps);
  add('perturb rademacher', 'js', 1, () => js.perturb(slab, 42n, 1e-3, { distribution: 'rademacher' }), elements, jsReps);
  add('accumulate 8 gaussian', 'js', 1, () => js.accumulate(slab, entries8), elements * 8, 3);

  // Low-rank noise (lowrank v1) on the default model's layout and on one large matrix (noise-lowrank.ts).
  const lowRankEngines = [...(native ? [{ implementation: 'native', engine: native }] : []), { implementation: 'js', engine: js }];
  rows.push(...benchLowRank(lowRankEngines, repetitions));

  // The floor is the fastest read+write loop measured: a ratio is floor time / operation time per element.
  const floorNs = Math.min(
    ...rows.filter((r) => r.name.startsWith('floor')).map((r) => (r.timing.medianMs * 1e6) / r.elementUpdates),
  );
  const nsPer = (r: Row): number => (r.timing.medianMs * 1e6) / r.elementUpdates;
  const find = (name: string, implementation: string, threads = 1): Row | undefined =>
    rows.find((r) => r.name === name && r.implementation === implementation && r.threads === threads);

  const targets: Array<{ target: string; value: number; goal: string; met: boolean }> = [];
  const gaussian = find('perturb gaussian', 'native');
  const rademacher = find('perturb rademacher', 'native');
  const accumulate8 = find('accumulate 8 gaussian', 'native');
  if (gaussian) {
    const ratio = floorNs / nsPer(gaussian);
    targets.push({ target: 'native gaussian speed / floor speed', value: ratio, goal: '>= 0.15', met: ratio >= 0.15 });
  }
  if (rademacher) {
    const ratio = floorNs / nsPer(rademacher);
    targets.push({ target: 'native rademacher speed / floor speed', value: ratio, goal: '>= 0.8', met: ratio >= 0.8 });
  }
  // The target is the browser agent's path (slab in the module's memory); the copying path is shown beside it.
  for (const [implementation, label] of [
    ['wasm simd128', 'slab in module memory'],
    ['wasm simd128 copied', 'slab copied through'],
  ] as const) {
    const wasmGaussian = find('perturb gaussian', implementation);
    if (gaussian && wasmGaussian) {
      const ratio = nsPer(gaussian) / nsPer(wasmGaussian);
      targets.push({ target: `wasm gaussian speed (${label}) / native ${native?.kernel.simd} gaussian speed`, value: ratio, goal: '>= 0.3', met: ratio >= 0.3 });
    }
  }
  if (gaussian && accumulate8) {
    const ratio = nsPer(accumulate8) / nsPer(gaussian);
    targets.push({ target: 'native accumulate(8) time per entry / perturb time', value: ratio, goal: '<= 1.0', met: ratio <= 1 });
  }

  const drift = measureRestoreDrift(native ?? js, randomWeights(native ?? js), 31337n, 1e-3);
  const table: Array<Record<string, string | number>> = rows.map((r) => ({
    operation: r.name,
    impl: r.implementation,
    threads: r.threads,
    'ms/call': r.timing.medianMs,
    'ns/elem/entry': nsPer(r),
    'speed vs floor': floorNs / nsPer(r),
  }));
  for (const t of targets) table.push({ operation: `TARGET ${t.target}`, impl: t.goal, threads: '', 'ms/call': '', 'ns/elem/entry': '', 'speed vs floor': `${t.value.toFixed(3)} ${t.met ? 'met' : 'MISSED'}` });
  const arm64 = checkArm64Bits();
  if (arm64) table.push({ operation: 'arm64 prebuilt under qemu-user', impl: arm64.status, threads: '', 'ms/call': '', 'ns/elem/entry': '', 'speed vs floor': 'bits only' });

  return {
    suite: 'noise',
    date: new Date().toISOString(),
    host: { ...hostInfo(), simd: native?.kernel.simd ?? 'none' },
    elements,
    floorNsPerElement: floorNs,
    rows: rows.map((r) => ({ ...r, nsPerElementUpdate: nsPer(r), speedVsFloor: floorNs / nsPer(r) })),
    targets,
    drift: { epsilon: 1e-3, weights: 'N(0, 0.02^2)', ...drift },
    arm64,
    table,
  };
}

function randomWeights(engine: NoiseEngine): Float32Array {
  const weights = new Float32Array(2 ** 20);
  engine.sample(weights, 2024n);
  for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! * 0.02;
  return weights;
}
