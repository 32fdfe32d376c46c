import { describe, expect, it } from 'vitest';
import { analyzeGraph, estimateMemory, familyGraph, largestFitting, largestInFamily, MLP_FAMILY, TRANSFORMER_FAMILY, zooFamily, checkFamilyParam } from '../../../shared/plan/index.js';

const MiB = 2 ** 20;

describe('largestFitting', () => {
  it('finds the boundary of a monotone predicate', () => {
    for (const limit of [1, 2, 3, 37, 64, 65, 1000]) expect(largestFitting((n) => n <= limit, 1, 1 << 20)).toBe(limit);
    expect(largestFitting((n) => n <= 50, 8, 1000, 8)).toBe(48);
    expect(largestFitting(() => false, 1, 10)).toBeNull();
    expect(largestFitting(() => true, 1, 10)).toBe(10);
  });
});

describe('largestInFamily', () => {
  const total = (param: string, size: number, method: 'mezo' | 'adam', family = MLP_FAMILY): number =>
    estimateMemory(analyzeGraph(familyGraph(family, param, size), { batch: 64 }), method).total;

  it('returns the last size that fits: the next one does not', () => {
    for (const method of ['mezo', 'adam'] as const) {
      const fit = largestInFamily(MLP_FAMILY, 'width', method, { batch: 64, budgetBytes: 256 * MiB });
      expect(fit.size).not.toBeNull();
      expect(total('width', fit.size!, method)).toBeLessThanOrEqual(256 * MiB);
      expect(total('width', fit.size! + 1, method)).toBeGreaterThan(256 * MiB);
      expect(fit.estimate!.total).toBe(total('width', fit.size!, method));
    }
  });

  it('is monotone in the budget, and MeZO always fits at least what Adam fits', () => {
    let previous = { mezo: 0, adam: 0 };
    for (const budget of [110, 150, 200, 300, 500]) {
      const mezo = largestInFamily(TRANSFORMER_FAMILY, 'layers', 'mezo', { batch: 16, budgetBytes: budget * MiB }).size ?? 0;
      const adam = largestInFamily(TRANSFORMER_FAMILY, 'layers', 'adam', { batch: 16, budgetBytes: budget * MiB }).size ?? 0;
      expect(mezo).toBeGreaterThanOrEqual(previous.mezo);
      expect(adam).toBeGreaterThanOrEqual(previous.adam);
      expect(mezo).toBeGreaterThanOrEqual(adam);
      previous = { mezo, adam };
    }
    expect(previous.adam).toBeGreaterThan(0);
  });

  it('reports when nothing fits, and when the family ends first', () => {
    const none = largestInFamily(MLP_FAMILY, 'width', 'adam', { batch: 64, budgetBytes: 10 * MiB });
    expect(none).toMatchObject({ size: null, model: null, estimate: null, atLimit: false });
    const capped = largestInFamily(TRANSFORMER_FAMILY, 'layers', 'mezo', { batch: 1, budgetBytes: 64 * 2 ** 30 });
    expect(capped).toMatchObject({ size: 64, atLimit: true });
  });

  it('rejects unknown families, parameters and sizes', () => {
    expect(() => zooFamily('resnet')).toThrow(/unknown zoo family "resnet"; known: mlp, cnn, transformer/);
    expect(() => checkFamilyParam(MLP_FAMILY, 'dim')).toThrow(/zoo:mlp has no size parameter "dim"; use one of width, layers/);
    expect(() => familyGraph(TRANSFORMER_FAMILY, 'dim', 12)).toThrow(/multiple of 8/);
    expect(() => largestInFamily(MLP_FAMILY, 'width', 'mezo', { batch: 1, budgetBytes: 0 })).toThrow(/budget must be positive/);
  });
});
