/**
 * The slab's alignment padding stays zero through every path that writes weights — evaluation (both restore
 * modes), updates, replay — so a trained slab equals the slab rebuilt from its exported tensors, bit for bit,
 * while the tensors' own values are exactly those of a run that ignores the padding.
 */
import { describe, expect, it } from 'vitest';
import { bakeModel } from '../../../coordinator/export-model.js';
import { MezoEvaluator } from '../../../edge-agent/mezo-evaluator.js';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { MemorySlabCheckpoint } from '../../../edge-agent/slab-checkpoint.js';
import { UpdateLog, replay } from '../../../shared/log/index.js';
import { clearPadding, decodeModel, loadDefaultModel, paddingRanges, slabSha256 } from '../../../shared/model/index.js';
import { readFloat32Into } from '../../../shared/model/tensor-data.js';
import { noise } from '../../../shared/noise/index.js';
import { bitsOf, expectSameBits } from '../../helpers/bits.js';

/** Two tensors with a gap between them and a padded tail: [0, 5) [16, 19), slab length 32. */
const TENSORS = [
  { offset: 16, length: 3 },
  { offset: 0, length: 5 },
];
const PADDING: Array<[number, number]> = [
  [5, 16],
  [19, 32],
];

function isPadding(i: number): boolean {
  return PADDING.some(([s, e]) => i >= s && i < e);
}

/** A base slab: tensor values non-zero, padding zero. */
function baseSlab(): Float32Array {
  const slab = new Float32Array(32);
  noise.sample(slab, 5n);
  clearPadding(slab, PADDING);
  return slab;
}

const loss = (slab: Float32Array) => async (): Promise<number> => slab.reduce((a, x, i) => a + (isPadding(i) ? 0 : x * x), 0);

describe(`slab padding (${noise.kind})`, () => {
  it('paddingRanges is the complement of the tensors; clearPadding zeroes it, in global indices', () => {
    expect(paddingRanges(TENSORS, 32)).toEqual(PADDING);
    expect(paddingRanges([{ offset: 0, length: 16 }], 16)).toEqual([]);
    const slab = new Float32Array(32).fill(1);
    clearPadding(slab, PADDING);
    expect([...slab].map((x, i) => (x === 0) === isPadding(i))).not.toContain(false);
    // A shard holding global indices [10, 20): its local [0, 6) and [9, 10) are padding.
    const shard = new Float32Array(10).fill(1);
    clearPadding(shard, PADDING, 10);
    expect([...shard]).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 0]);
  });

  for (const restore of ['subtract', 'reload'] as const) {
    it(`restore by ${restore}: evaluation and updates keep the padding zero and leave the tensors' bits unchanged`, async () => {
      const make = (padding: Array<[number, number]>) => {
        const slab = baseSlab();
        const checkpoint = restore === 'reload' ? new MemorySlabCheckpoint() : undefined;
        return { slab, evaluator: new MezoEvaluator(noise, slab, 'gaussian', checkpoint, padding) };
      };
      const padded = make(PADDING);
      const plain = make([]);
      for (const { slab, evaluator } of [padded, plain]) {
        await evaluator.evaluate([1n, 2n, 3n], 1e-2, loss(slab), { lr: 0.1 });
        await evaluator.apply([{ seed: 9n, coeff: 0.05 }, { seed: 10n, coeff: -0.02 }]);
      }
      // Without padding ranges the noise lands in the padding (the defect); with them it stays zero.
      expect(PADDING.some(([s, e]) => plain.slab.subarray(s, e).some((x) => x !== 0))).toBe(true);
      const expected = plain.slab.slice();
      clearPadding(expected, PADDING);
      expectSameBits(padded.slab, expected, 'slab with padding kept zero');
      // A failed loss evaluation restores the weights and keeps the padding zero too.
      await expect(padded.evaluator.evaluate([4n], 1e-2, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expectSameBits(padded.slab, expected, 'slab after a failed evaluation');
    });
  }

  it('replay keeps the padding zero and matches the replica that applied the same entries', async () => {
    const log = UpdateLog.inMemory({ jobId: 'padding', baseSha256: slabSha256(baseSlab()), distribution: 'gaussian', decayRanges: [] });
    for (let round = 0; round < 5; round++) {
      await log.append({ round, lr: 0.1, decay: 1, terms: [{ seed: BigInt(100 + round), coeff: 0.01 * (round + 1) }] });
    }
    const replica = baseSlab();
    const evaluator = new MezoEvaluator(noise, replica, 'gaussian', undefined, PADDING);
    for (const entry of log.entries()) await evaluator.apply(entry.terms);
    const replayed = baseSlab();
    replay(noise, replayed, log.entries(), 'gaussian', { padding: PADDING });
    expectSameBits(replayed, replica, 'replay vs replica');
    expect(bitsOf(replayed.subarray(5, 16)).every((b) => b === 0)).toBe(true);
    expect(bitsOf(replayed.subarray(19)).every((b) => b === 0)).toBe(true);
  });

  it('default model: the trained slab equals the slab rebuilt from the exported model', async () => {
    const prepared = await loadDefaultModel();
    const padding = paddingRanges(prepared.manifest.tensors, prepared.slab.length);
    // The default model has padding (between its last bias and the matrix after it).
    expect(padding.length).toBeGreaterThan(0);
    const backend = await InProcessBackend.create(prepared, noise, { restore: 'subtract', intraOpThreads: 1 });
    try {
      const features = new Float32Array(8 * 784).map((_, i) => ((i * 31) % 255) / 255);
      const batch = { features, labels: BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i)), size: 8, shape: [784] };
      await backend.evaluate([1n, 2n], 1e-3, batch, { lr: 1e-3 });
      await backend.apply([{ seed: 3n, coeff: 1e-3 }]);
      const trained = await backend.snapshot();
      const rebuilt = new Float32Array(prepared.slab.length);
      const graph = decodeModel(bakeModel(prepared, trained)).graph!;
      for (const t of prepared.manifest.tensors) {
        const initializer = graph.initializer!.find((i) => i.name === t.name)!;
        readFloat32Into(initializer, rebuilt.subarray(t.offset, t.offset + t.length), undefined);
      }
      expect(slabSha256(rebuilt)).toBe(slabSha256(trained));
      expect(slabSha256(trained)).not.toBe(prepared.manifest.slabSha256);
    } finally {
      await backend.close();
    }
  });
});
