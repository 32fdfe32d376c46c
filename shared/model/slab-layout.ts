/**
 * Where each trainable tensor lives in the slab: one contiguous Float32Array, tensors in graph order, each
 * starting at a multiple of SLAB_ALIGNMENT elements (64 bytes) so every view starts on a cache line and SIMD
 * kernels can use aligned loads within a tensor.
 */
export const SLAB_ALIGNMENT = 16;

export interface SlabTensor {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

export function alignUp(value: number, alignment = SLAB_ALIGNMENT): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Lays tensors out back to back with aligned offsets; returns the layout and the slab length. */
export function layoutSlab(tensors: ReadonlyArray<{ name: string; shape: number[] }>): { tensors: SlabTensor[]; length: number } {
  let cursor = 0;
  const laid = tensors.map(({ name, shape }) => {
    const offset = alignUp(cursor);
    const length = shape.reduce((a, b) => a * b, 1);
    cursor = offset + length;
    return { name, shape: [...shape], offset, length };
  });
  // The tail is padded too, so slabs concatenated by a caller keep the alignment.
  return { tensors: laid, length: alignUp(cursor) };
}

/** Zero-copy views of the slab, one per tensor. */
export function slabViews(slab: Float32Array, tensors: readonly SlabTensor[]): Map<string, Float32Array> {
  return new Map(tensors.map((t) => [t.name, slab.subarray(t.offset, t.offset + t.length)]));
}

/**
 * The slab's padding: the [start, end) ranges that belong to no tensor (alignment gaps and the tail). Noise is
 * drawn over the whole slab, so every path that writes weights zeroes these afterwards: a trained slab then
 * equals one rebuilt from its exported tensors, bit for bit.
 */
export function paddingRanges(tensors: ReadonlyArray<{ offset: number; length: number }>, slabLength: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let cursor = 0;
  for (const t of [...tensors].sort((a, b) => a.offset - b.offset)) {
    if (t.offset > cursor) ranges.push([cursor, t.offset]);
    cursor = Math.max(cursor, t.offset + t.length);
  }
  if (slabLength > cursor) ranges.push([cursor, slabLength]);
  return ranges;
}

/** Sets the padding ranges (global indices; `offset` is the global index of slab[0]) that fall in this slab to 0. */
export function clearPadding(slab: Float32Array, padding: ReadonlyArray<readonly [number, number]>, offset = 0): void {
  for (const [start, end] of padding) {
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, slab.length);
    if (from < to) slab.fill(0, from, to);
  }
}
