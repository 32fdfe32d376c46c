/**
 * Low-rank noise (lowrank v1) rows of `npm run bench -- noise`: perturb on the default model's layout at rank 4,
 * next to the Gaussian on the same slab, for the native and the TypeScript kernels; and on one large square matrix,
 * where the per-call U and V draws vanish and the kernel's own loop shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir } from '../../shared/model/default-model.js';
import { lowRankLayoutFromTensors, NoiseEngine, PackedEntries, type LowRankLayout } from '../../shared/noise/index.js';
import { time, type Timing } from './harness.js';

export interface LowRankRow {
  name: string;
  implementation: string;
  threads: number;
  timing: Timing;
  /** Elements × entries processed per timed call. */
  elementUpdates: number;
}

/** The committed default model's trainable layout: slab length and its rank-r matrices. */
export function defaultModelLowRank(rank: number): { length: number; layout: LowRankLayout } {
  const manifest = JSON.parse(readFileSync(join(defaultModelDir(), 'manifest.json'), 'utf8')) as {
    slabLength: number;
    tensors: { offset: number; shape: number[] }[];
  };
  return { length: manifest.slabLength, layout: lowRankLayoutFromTensors(manifest.tensors, rank) };
}

export function benchLowRank(engines: Array<{ implementation: string; engine: NoiseEngine }>, repetitions: number): LowRankRow[] {
  const rows: LowRankRow[] = [];
  const rank = 4;
  const model = defaultModelLowRank(rank);
  const slab = new Float32Array(model.length).fill(0.01);
  // The default model is small (about 10^5 parameters): each timed call runs many perturbs, so that timer
  // resolution and call overhead do not dominate.
  const inner = 64;
  const entries8 = PackedEntries.from(Array.from({ length: 8 }, (_, k) => ({ seed: BigInt(1000 + k), coeff: 1e-6 })));
  const lowrank = { distribution: 'lowrank' as const, lowRank: model.layout };
  const squareSide = 4096;
  const square = new Float32Array(squareSide * squareSide).fill(0.01);
  const squareLayout: LowRankLayout = { rank, matrices: [{ offset: 0, rows: squareSide, cols: squareSide }] };
  for (const { implementation, engine } of engines) {
    engine.setThreads(1);
    const reps = implementation === 'js' ? Math.max(3, Math.floor(repetitions / 2)) : repetitions;
    const add = (name: string, run: () => void, updates: number): void => {
      rows.push({ name, implementation, threads: 1, timing: time(run, { repetitions: reps }), elementUpdates: updates });
    };
    add('perturb gaussian, default model', () => {
      for (let k = 0; k < inner; k++) engine.perturb(slab, 42n + BigInt(k), 1e-6);
    }, inner * slab.length);
    add(`perturb lowrank r=${rank}, default model`, () => {
      for (let k = 0; k < inner; k++) engine.perturb(slab, 42n + BigInt(k), 1e-6, lowrank);
    }, inner * slab.length);
    add(`accumulate 8 lowrank r=${rank}, default model`, () => {
      for (let k = 0; k < inner / 8; k++) engine.accumulate(slab, entries8, lowrank);
    }, inner * slab.length);
    add(`perturb lowrank r=${rank}, ${squareSide}x${squareSide} matrix`, () => {
      engine.perturb(square, 42n, 1e-6, { distribution: 'lowrank', lowRank: squareLayout });
    }, square.length);
  }
  return rows;
}
