/** `mezo plan --rank`: MeZO with low-rank noise counts the noise kernel's per-call scratch, O((m + n)·r). */
import { describe, expect, it } from 'vitest';
import { runPlan, formatPlan } from '../../../cli/plan-command.js';
import { defaultModelDir } from '../../../shared/model/index.js';
import { lowRankScratchBytes } from '../../../shared/plan/index.js';

describe('mezo plan with low-rank noise', () => {
  it('adds r·(cols + 2) floats per noise thread for the widest matrix to MeZO, and nothing to backprop', async () => {
    const plain = await runPlan(defaultModelDir(), { batch: 64 });
    const lowRank = await runPlan(defaultModelDir(), { batch: 64, rank: 8 });
    const [mezoPlain, mezoLow] = [plain, lowRank].map((r) => (r.estimates as Array<{ method: string; total: number; optimizerState: number; noiseScratch?: number }>)[0]!);
    // The default model's widest matrix is fc0: 128 × 784.
    expect((lowRank.facts as { widestMatrixCols: number }).widestMatrixCols).toBe(784);
    expect(mezoLow!.noiseScratch).toBe(16 * 8 * 786);
    expect(mezoLow!.optimizerState).toBe(mezoLow!.noiseScratch);
    expect(mezoLow!.total - mezoPlain!.total).toBe(mezoLow!.noiseScratch);
    expect(mezoPlain!.noiseScratch).toBeUndefined();
    // Tiny against the weights (≤ 2 % of the slab, as issue 12 asks of any optimizer state).
    expect(mezoLow!.noiseScratch!).toBeLessThan(0.25 * 4 * 109_392);
    const backprop = (r: Record<string, unknown>) => (r.estimates as Array<{ method: string; total: number }>).slice(1).map((e) => e.total);
    expect(backprop(lowRank)).toEqual(backprop(plain));
    expect(await formatPlan(lowRank)).toMatch(/low-rank noise scratch/);
  });

  it('refuses a rank outside 1–64', () => {
    expect(() => lowRankScratchBytes(10, 0)).toThrow(/rank must be an integer in \[1, 64\]/);
    expect(() => lowRankScratchBytes(10, 65)).toThrow(/rank/);
  });
});
