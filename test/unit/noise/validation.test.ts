import { describe, expect, it } from 'vitest';
import { noise, PackedEntries } from '../../../shared/noise/index.js';

const bitsOf = (values: Float32Array): Uint32Array => new Uint32Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));

/** Runs `call` on a fresh slab, expects the error, and checks that not a bit of the slab changed. */
function expectRejected(call: (slab: Float32Array) => void, type: typeof TypeError | typeof RangeError, message: RegExp): void {
  const slab = Float32Array.from({ length: 257 }, (_, i) => Math.sin(i) * 0.01);
  const before = bitsOf(slab);
  expect(() => call(slab)).toThrow(type);
  expect(() => call(slab)).toThrow(message);
  expect(bitsOf(slab)).toEqual(before);
}

describe(`noise argument validation (${noise.kind})`, () => {
  it('rejects a slab that is not a Float32Array', () => {
    for (const bad of [new Float64Array(4), [0, 1, 2], new Uint32Array(4), null, undefined, 'slab']) {
      expect(() => noise.perturb(bad as unknown as Float32Array, 1n, 1)).toThrow(/perturb: slab must be a Float32Array/);
      expect(() => noise.accumulate(bad as unknown as Float32Array, [])).toThrow(/accumulate: slab must be a Float32Array/);
      expect(() => noise.sample(bad as unknown as Float32Array, 1n)).toThrow(/sample: out must be a Float32Array/);
    }
  });

  it('rejects seeds outside [0, 2^64) or of the wrong type, naming the seed', () => {
    expectRejected((s) => noise.perturb(s, -1n, 1), RangeError, /perturb: seed must be in \[0, 2\^64\)/);
    expectRejected((s) => noise.perturb(s, 2n ** 64n, 1), RangeError, /perturb: seed/);
    expectRejected((s) => noise.perturb(s, -3, 1), RangeError, /perturb: seed must be a non-negative safe integer/);
    expectRejected((s) => noise.perturb(s, 1.5, 1), RangeError, /perturb: seed/);
    expectRejected((s) => noise.perturb(s, 2 ** 53, 1), RangeError, /perturb: seed/);
    expectRejected((s) => noise.perturb(s, '18446744073709551616', 1), RangeError, /perturb: seed must be in/);
    expectRejected((s) => noise.perturb(s, '12abc', 1), RangeError, /perturb: seed must be a decimal integer string/);
    expectRejected((s) => noise.perturb(s, {} as unknown as bigint, 1), TypeError, /perturb: seed must be a bigint/);
  });

  it('rejects a scale that is not finite in float32', () => {
    for (const bad of [Number.NaN, Infinity, -Infinity, 1e39]) {
      expectRejected((s) => noise.perturb(s, 1n, bad), RangeError, /perturb: scale must be finite in float32/);
    }
    expectRejected((s) => noise.perturb(s, 1n, '1' as unknown as number), TypeError, /perturb: scale must be a number/);
  });

  it('rejects ranges and offsets outside the slab, naming the option', () => {
    expectRejected((s) => noise.perturb(s, 1n, 1, { start: -1 }), RangeError, /options\.start must be an integer in \[0, 257\]/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { start: 300 }), RangeError, /options\.start/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { start: 10, end: 5 }), RangeError, /options\.end must be an integer in \[start=10, 257\]/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { end: 258 }), RangeError, /options\.end/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { end: 2.5 }), RangeError, /options\.end/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { offset: -4 }), RangeError, /options\.offset must be a non-negative integer/);
    expectRejected((s) => noise.perturb(s, 1n, 1, { offset: 2 ** 53 - 100 }), RangeError, /options\.offset/);
    expectRejected(
      (s) => noise.perturb(s, 1n, 1, { distribution: 'uniform' as 'gaussian' }),
      TypeError,
      /perturb: options\.distribution must be 'gaussian', 'rademacher' or 'lowrank'/,
    );
  });

  it('rejects bad accumulate entries by index, and applies none of the good ones before it', () => {
    expectRejected(
      (s) => noise.accumulate(s, [{ seed: 1n, coeff: 0.1 }, { seed: 2n, coeff: Number.NaN }]),
      RangeError,
      /accumulate: entries\[1\]\.coeff must be finite in float32/,
    );
    expectRejected(
      (s) => noise.accumulate(s, [{ seed: 1n, coeff: 0.1 }, { seed: -2n, coeff: 0.1 }]),
      RangeError,
      /accumulate: entries\[1\]\.seed must be in/,
    );
    expectRejected((s) => noise.accumulate(s, [null as unknown as { seed: bigint; coeff: number }]), TypeError, /entries\[0\] must be an object/);
    expectRejected((s) => noise.accumulate(s, 'x' as unknown as []), TypeError, /accumulate: entries must be an array/);
    expect(() => PackedEntries.from([{ seed: 1n, coeff: 1e300 }])).toThrow(/entries\[0\]\.coeff must be finite in float32/);
  });

  it('rejects malformed Philox arguments and thread counts', () => {
    expect(() => noise.philox([0, 0, 0], [0, 0])).toThrow(/philox: counter must be an array of 4/);
    expect(() => noise.philox([0, 0, 0, 2 ** 32], [0, 0])).toThrow(/philox: counter\[3\] must be an integer/);
    expect(() => noise.philox([0, 0, 0, 0], [0, -1])).toThrow(/philox: key\[1\]/);
    expect(() => noise.setThreads(0)).toThrow(/setThreads: threads must be an integer in \[1, 256\]/);
    expect(() => noise.setThreads(1.5)).toThrow(RangeError);
  });

  it('treats empty ranges and empty entry lists as no-ops', () => {
    const slab = new Float32Array([1, 2, 3]);
    noise.perturb(slab, 1n, 1, { start: 2, end: 2 });
    noise.accumulate(slab, []);
    noise.perturb(new Float32Array(0), 1n, 1);
    expect(Array.from(slab)).toEqual([1, 2, 3]);
  });
});
