/**
 * The low-rank (LOZO) extension of the noise contract, "lowrank" version 1 (docs/noise.md): which tensors are
 * matrices, and the checked, packed form of a layout that the kernels take.
 */
import { MAX_GLOBAL_INDEX, MAX_LOWRANK_RANK } from './contract.js';
import type { PackedLowRank } from './kernel.js';

/** One weight matrix in global index coordinates: rows·cols elements, row-major, from `offset`. */
export interface LowRankMatrix {
  offset: number;
  rows: number;
  cols: number;
}

/** The rank r and the matrices that take rank-r noise; every other element takes the v1 Gaussian. */
export interface LowRankLayout {
  rank: number;
  matrices: readonly LowRankMatrix[];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function checkRank(rank: unknown, name: string): number {
  if (typeof rank !== 'number') throw new TypeError(`${name} must be a number, got ${describe(rank)}`);
  if (!Number.isInteger(rank) || rank < 1 || rank > MAX_LOWRANK_RANK) {
    throw new RangeError(`${name} must be an integer in [1, ${MAX_LOWRANK_RANK}], got ${describe(rank)}`);
  }
  return rank;
}

/**
 * The contract's rule for which tensors are matrices: every tensor of two or more dimensions, rows = shape[0],
 * cols = product of the rest (a conv kernel [out, in, kh, kw] is out × (in·kh·kw)), unless rows ≤ rank or
 * cols ≤ rank, where a rank-r product would not be low rank. Tensors are taken in offset order.
 */
export function lowRankLayoutFromTensors(
  tensors: readonly { offset: number; shape: readonly number[] }[],
  rank: number,
): LowRankLayout {
  const fn = 'lowRankLayoutFromTensors';
  checkRank(rank, `${fn}: rank`);
  if (!Array.isArray(tensors)) throw new TypeError(`${fn}: tensors must be an array, got ${describe(tensors)}`);
  const matrices: LowRankMatrix[] = [];
  tensors.forEach((tensor: unknown, t) => {
    if (tensor === null || typeof tensor !== 'object') {
      throw new TypeError(`${fn}: tensors[${t}] must be an object { offset, shape }, got ${describe(tensor)}`);
    }
    const { offset, shape } = tensor as { offset: unknown; shape: unknown };
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`${fn}: tensors[${t}].offset must be a non-negative safe integer, got ${describe(offset)}`);
    }
    if (!Array.isArray(shape)) throw new TypeError(`${fn}: tensors[${t}].shape must be an array, got ${describe(shape)}`);
    shape.forEach((d: unknown, i) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(`${fn}: tensors[${t}].shape[${i}] must be a non-negative integer, got ${describe(d)}`);
      }
    });
    if (shape.length < 2) return;
    const rows = shape[0] as number;
    const cols = (shape as number[]).slice(1).reduce((p, d) => p * d, 1);
    if (rows <= rank || cols <= rank) return;
    matrices.push({ offset, rows, cols });
  });
  matrices.sort((a, b) => a.offset - b.offset);
  // The result must be a valid layout (disjoint, in range); packLowRank says which tensor breaks it.
  const layout: LowRankLayout = { rank, matrices };
  packLowRank(layout, `${fn}: result`);
  return layout;
}

/**
 * Checks a layout (every field named in the error) and packs it as (offset, rows, cols) triples. Besides the
 * contract's rules it requires offset + max(rows, cols)·rank ≤ 2^53 − 1, so that the U and V element indices stay
 * exact integers; a layout built by lowRankLayoutFromTensors always satisfies it (rows, cols > rank).
 */
export function packLowRank(layout: unknown, name: string): PackedLowRank {
  if (layout === null || typeof layout !== 'object' || Array.isArray(layout)) {
    throw new TypeError(`${name} must be an object { rank, matrices }, got ${describe(layout)}`);
  }
  const { rank, matrices } = layout as { rank: unknown; matrices: unknown };
  const r = checkRank(rank, `${name}.rank`);
  if (!Array.isArray(matrices)) throw new TypeError(`${name}.matrices must be an array, got ${describe(matrices)}`);
  const packed = new Float64Array(3 * matrices.length);
  let previousEnd = 0;
  matrices.forEach((matrix: unknown, j) => {
    const at = `${name}.matrices[${j}]`;
    if (matrix === null || typeof matrix !== 'object') {
      throw new TypeError(`${at} must be an object { offset, rows, cols }, got ${describe(matrix)}`);
    }
    const { offset, rows, cols } = matrix as Record<string, unknown>;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`${at}.offset must be a non-negative safe integer, got ${describe(offset)}`);
    }
    if (typeof rows !== 'number' || !Number.isSafeInteger(rows) || rows < 1) {
      throw new RangeError(`${at}.rows must be a positive integer, got ${describe(rows)}`);
    }
    if (typeof cols !== 'number' || !Number.isSafeInteger(cols) || cols < 1) {
      throw new RangeError(`${at}.cols must be a positive integer, got ${describe(cols)}`);
    }
    // Rounding is monotonic and 2^53 is a double, so an inexact product still compares correctly.
    if (offset + rows * cols > MAX_GLOBAL_INDEX) {
      throw new RangeError(`${at}: offset + rows·cols must be <= 2^53 - 1, got ${offset} + ${rows}·${cols}`);
    }
    if (offset + Math.max(rows, cols) * r > MAX_GLOBAL_INDEX) {
      throw new RangeError(`${at}: offset + max(rows, cols)·rank must be <= 2^53 - 1`);
    }
    if (j > 0 && offset < previousEnd) {
      throw new RangeError(
        `${at}.offset must be >= ${previousEnd} (matrices sorted by offset, not overlapping), got ${offset}`,
      );
    }
    previousEnd = offset + rows * cols;
    packed[3 * j] = offset;
    packed[3 * j + 1] = rows;
    packed[3 * j + 2] = cols;
  });
  return { rank: r, matrices: packed };
}
