import { describe, expect, it } from 'vitest';
import { clipValue } from '../../../shared/optim/clip.js';
import { clipValue as strategyClip } from '../../../coordinator/strategy.js';
import { coefficientFor } from '../../../edge-agent/mezo-evaluator.js';

describe('clipValue', () => {
  it('limits to [-bound, bound], leaves values inside and unbounded ones alone', () => {
    expect(clipValue(5, 2)).toBe(2);
    expect(clipValue(-5, 2)).toBe(-2);
    expect(clipValue(1.5, 2)).toBe(1.5);
    expect(clipValue(-7, undefined)).toBe(-7);
  });

  it('is the one the strategy exports and the one local training clips with', () => {
    expect(strategyClip).toBe(clipValue);
    expect(coefficientFor(10, { lr: 0.1, clip: 2, divisor: 4 })).toBe((-0.1 * 2) / 4);
    expect(coefficientFor(-10, { lr: 0.1, clip: 2 })).toBe(-0.1 * -2);
    expect(coefficientFor(10, { lr: 0.1 })).toBe(-0.1 * 10);
  });
});
