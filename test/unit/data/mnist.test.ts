import { describe, expect, it, vi } from 'vitest';
import { loadMnist, MNIST_PIXELS } from '../../../shared/data/index.js';

// Per-digit counts of the 10,000 images in the mnist package.
const COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

describe('MNIST (mnist package)', () => {
  it('loads 10,000 images of 784 pixels in [0, 1] with ten roughly balanced classes', () => {
    const d = loadMnist();
    expect(d.size).toBe(10_000);
    expect(d.featureShape).toEqual([MNIST_PIXELS]);
    expect(d.numClasses).toBe(10);
    expect(d.classCounts()).toEqual(COUNTS);
    expect(Math.max(...COUNTS) / Math.min(...COUNTS)).toBeLessThan(1.35);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (let i = 0; i < d.size; i += 37) {
      for (const v of d.features(i)) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // Digits are thin strokes on a black background: about 13% ink on average.
    const mean = sum / (Math.ceil(d.size / 37) * MNIST_PIXELS);
    expect(mean).toBeGreaterThan(0.08);
    expect(mean).toBeLessThan(0.2);
  });

  it('offers the image shape and a balanced per-class subset', () => {
    const d = loadMnist({ shape: 'image', perClass: 20 });
    expect(d.featureShape).toEqual([1, 28, 28]);
    expect(d.size).toBe(200);
    expect(d.classCounts()).toEqual(new Array(10).fill(20));
    const full = loadMnist();
    // The subset's first 1 is the full set's first 1 (row 1001: after the 1001 zeros).
    expect(Array.from(d.features(20))).toEqual(Array.from(full.features(1001)));
    expect(d.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('gives each caller its own pixels and parses the digit files only once', () => {
    const a = loadMnist();
    a.features(0).fill(0.5);
    // Counted, not timed: a second load must reuse the parsed arrays instead of parsing the ten files again.
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const b = loadMnist();
      expect(parse).not.toHaveBeenCalled();
      expect(b.features(0)[0]).toBe(0);
    } finally {
      parse.mockRestore();
    }
  });

  it('batches as float32 with int64 labels', () => {
    const d = loadMnist({ shape: 'image', perClass: 10 });
    const first = d.batches(32, { seed: 1 }).next().value!;
    expect(first.shape).toEqual([32, 1, 28, 28]);
    expect(first.features.length).toBe(32 * 784);
    expect(first.labels).toBeInstanceOf(BigInt64Array);
  });

  it('rejects bad options', () => {
    expect(() => loadMnist({ shape: 'square' as 'flat' })).toThrow(
      "loadMnist: options.shape must be 'flat' or 'image', got \"square\"",
    );
    expect(() => loadMnist({ perClass: 0 })).toThrow('loadMnist: options.perClass must be an integer >= 1, got 0');
  });
});
