import { expect } from 'vitest';

/** The raw binary32 patterns of a Float32Array (a view, no copy). */
export function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/**
 * Asserts two float arrays are identical bit for bit. Compares in a plain loop (deep equality on millions of
 * elements is slow) and reports the first difference with its index and both bit patterns.
 */
export function expectSameBits(actual: Float32Array, expected: Float32Array, label = 'arrays'): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const a = bitsOf(actual);
  const b = bitsOf(expected);
  let differing = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      differing++;
    }
  }
  if (differing > 0) {
    const hex = (x: number): string => x.toString(16).padStart(8, '0');
    expect.fail(
      `${label}: ${differing} of ${a.length} elements differ; first at index ${first}: ` +
        `${hex(a[first]!)} (${actual[first]}) vs ${hex(b[first]!)} (${expected[first]})`,
    );
  }
}
