import { describe, expect, it } from 'vitest';
import { LocalDataset, trainTestSplit, type Batch } from '../../../shared/data/index.js';

/** n rows of width 3 whose first feature is the row number, labels cycling over 4 classes. */
function numbered(n: number): LocalDataset<Float32Array> {
  const features = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) features.set([i, i + 0.5, -i], i * 3);
  return new LocalDataset({
    features,
    labels: Int32Array.from({ length: n }, (_, i) => i % 4),
    featureShape: [3],
    numClasses: 4,
    name: 'numbered',
  });
}

function collect<F extends Float32Array | BigInt64Array>(it: Iterable<Batch<F>>): Batch<F>[] {
  return Array.from(it, (b) => ({
    ...b,
    features: b.features.slice() as F,
    labels: b.labels.slice(),
    indices: b.indices.slice(),
  }));
}

describe('LocalDataset', () => {
  it('validates its parts, naming the dataset and the row', () => {
    const ok = { features: new Float32Array(6), labels: [0, 1], featureShape: [3], numClasses: 2, name: 'd' };
    expect(() => new LocalDataset({ ...ok, features: new Float32Array(5) })).toThrow(
      'd: features has 5 values, expected 2 rows × 3 = 6',
    );
    expect(() => new LocalDataset({ ...ok, labels: [0, 2] })).toThrow('d row 1: label 2 is not an integer in [0, 2)');
    expect(() => new LocalDataset({ ...ok, featureShape: [3, 0] })).toThrow(
      'd: featureShape[1] must be an integer >= 1, got 0',
    );
    expect(() => new LocalDataset({ ...ok, features: [1, 2] as unknown as Float32Array })).toThrow(
      'd: features must be a Float32Array or BigInt64Array',
    );
    expect(() => new LocalDataset({ ...ok, numClasses: 0 })).toThrow(
      'd: numClasses must be an integer in [1, 2147483647], got 0',
    );
  });

  it('exposes rows, labels and class counts', () => {
    const d = numbered(10);
    expect(d.size).toBe(10);
    expect(d.dtype).toBe('float32');
    expect(Array.from(d.features(7))).toEqual([7, 7.5, -7]);
    expect(d.label(7)).toBe(3);
    expect(d.classCounts()).toEqual([3, 3, 2, 2]);
    expect(() => d.features(10)).toThrow('numbered: example index must be an integer in [0, 10), got 10');
  });

  it('builds views without copying and materializes them', () => {
    const d = numbered(10);
    const view = d.subset([9, 2, 5]);
    expect(view.size).toBe(3);
    expect(Array.from(view.labels())).toEqual([1, 2, 1]);
    expect(view.features(0)[0]).toBe(9);
    const nested = view.subset([2, 0]);
    expect(Array.from({ length: 2 }, (_, i) => nested.features(i)[0])).toEqual([5, 9]);
    const copy = nested.materialize('copy');
    expect(copy.name).toBe('copy');
    expect(Array.from(copy.features(1))).toEqual([9, 9.5, -9]);
    expect(() => d.subset([0, 10])).toThrow('subset: indices[1] must be an integer in [0, 10), got 10');
  });

  it('covers every example exactly once per epoch, in batches of the asked size', () => {
    const d = numbered(103);
    const batches = collect(d.batches(10, { seed: 1, epoch: 0 }));
    expect(batches.map((b) => b.size)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    const seen = batches.flatMap((b) => Array.from(b.indices));
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    for (const b of batches) {
      expect(b.shape).toEqual([b.size, 3]);
      expect(b.features.length).toBe(b.size * 3);
      for (let k = 0; k < b.size; k++) {
        const i = b.indices[k]!;
        expect(b.features[k * 3]).toBe(i);
        expect(b.labels[k]).toBe(BigInt(i % 4));
      }
    }
    expect(batches.map((b) => b.index)).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });

  it('shuffles deterministically by (seed, epoch), and differently across seeds and epochs', () => {
    const d = numbered(200);
    const order = (seed: number, epoch: number): number[] =>
      collect(d.batches(32, { seed, epoch })).flatMap((b) => Array.from(b.indices));
    const first = order(5, 0);
    expect(order(5, 0)).toEqual(first);
    expect(order(5, 1)).not.toEqual(first);
    expect(order(6, 0)).not.toEqual(first);
    expect(first).toEqual(Array.from(d.epochOrder(5, 0)));
    expect(first).not.toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('drops the short last batch on request and keeps stored order without shuffling', () => {
    const d = numbered(25);
    expect(collect(d.batches(10, { seed: 0, dropLast: true })).map((b) => b.size)).toEqual([10, 10]);
    expect(d.batchCount(10, true)).toBe(2);
    expect(d.batchCount(10)).toBe(3);
    const plain = collect(d.batches(10, { shuffle: false })).flatMap((b) => Array.from(b.indices));
    expect(plain).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(collect(d.batches(100, { seed: 3 })).map((b) => b.size)).toEqual([25]);
  });

  it('reuses one set of buffers by default and allocates per batch when asked', () => {
    const d = numbered(30);
    const reused = Array.from(d.batches(10, { seed: 1 }));
    expect(reused[0]!.features).toBe(reused[1]!.features);
    const fresh = Array.from(d.batches(10, { seed: 1, reuseBuffers: false }));
    expect(fresh[0]!.features).not.toBe(fresh[1]!.features);
    expect(fresh[0]!.features[0]).toBe(fresh[0]!.indices[0]);
  });

  it('rejects bad batch arguments before the first batch', () => {
    const d = numbered(5);
    expect(() => d.batches(0, { seed: 1 })).toThrow('numbered: batchSize must be an integer >= 1, got 0');
    expect(() => d.batches(2)).toThrow('numbered: options.seed is required when shuffling');
    expect(() => d.batches(2, { seed: 1, epoch: -1 })).toThrow(
      'numbered: options.epoch must be an integer >= 0, got -1',
    );
    expect(() => d.batches(2, { seed: 'x' })).toThrow(
      'numbered: options.seed must be a decimal integer string in [0, 2^64), got "x"',
    );
  });

  it('batches int64 token sequences as BigInt64Array', () => {
    const L = 4;
    const features = BigInt64Array.from({ length: 6 * L }, (_, j) => BigInt(j));
    const d = new LocalDataset({ features, labels: [0, 1, 0, 1, 0, 1], featureShape: [L], numClasses: 2 });
    expect(d.dtype).toBe('int64');
    const batches = collect(d.batches(4, { seed: 9 }));
    expect(batches[0]!.features).toBeInstanceOf(BigInt64Array);
    expect(batches[0]!.shape).toEqual([4, L]);
    for (const b of batches) {
      for (let k = 0; k < b.size; k++) expect(b.features[k * L]).toBe(BigInt(b.indices[k]! * L));
    }
  });

  it('narrows its feature type on request, naming the dataset when it cannot', () => {
    const floats: LocalDataset = numbered(2);
    expect(floats.asFloat32().features(1)[0]).toBe(1);
    expect(() => floats.asInt64()).toThrow('numbered: expected int64 token ids, the dataset holds float32 features');
  });

  it('batches a view through its index map', () => {
    const view = numbered(50).subset([40, 41, 42, 43, 44]);
    const firstColumn = (b: Batch<Float32Array>): number[] => Array.from(b.features.filter((_, j) => j % 3 === 0));
    const rows = collect(view.batches(2, { seed: 1 })).flatMap(firstColumn);
    expect(rows.sort((a, b) => a - b)).toEqual([40, 41, 42, 43, 44]);
  });
});

describe('trainTestSplit', () => {
  it('splits disjointly, completely, stratified and deterministically', () => {
    const d = numbered(400);
    const { train, test } = trainTestSplit(d, { testFraction: 0.25, seed: 1 });
    expect(train.size + test.size).toBe(400);
    expect(test.classCounts()).toEqual([25, 25, 25, 25]);
    const ids = (v: LocalDataset<Float32Array>): number[] =>
      Array.from({ length: v.size }, (_, i) => v.features(i)[0]!);
    const all = new Set([...ids(train), ...ids(test)]);
    expect(all.size).toBe(400);
    expect(ids(trainTestSplit(d, { testFraction: 0.25, seed: 1 }).test)).toEqual(ids(test));
    expect(ids(trainTestSplit(d, { testFraction: 0.25, seed: 2 }).test)).not.toEqual(ids(test));
    expect(() => trainTestSplit(d, { testFraction: 1, seed: 1 })).toThrow(
      'testFraction must be a number in (0, 1), got 1',
    );
  });
});
