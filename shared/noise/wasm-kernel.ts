/**
 * The WebAssembly noise kernel (shared/noise/wasm/noise-kernel.wasm, built by scripts/build-wasm-noise.mjs from
 * the portable C++ kernel): the same bits as the native addon and the TypeScript kernel, for browsers and any
 * JavaScript engine without the addon. The module works on its own linear memory. A slab allocated there
 * (allocateSlab) is worked on in place; any other Float32Array is copied through that memory in chunks, which
 * gives the same bits but costs about a tenth of the Gaussian kernel's time. Distributions the module does not
 * implement (the low-rank extension) go to the TypeScript kernel, which defines them.
 *
 * The module's memory, from __heap_base up: 16 bytes for philox's output, a fixed area for update entries, the
 * copy chunk, then the slabs allocateSlab hands out, back to back. Only allocateSlab grows the memory (more
 * entries than the area holds are applied in batches, which gives the same bits), because growing detaches every
 * view of the old buffer, slabs included.
 *
 * No Node.js imports here: this file is part of the browser bundle. wasm-kernel-node.ts reads the module from
 * the package for Node.js.
 */
import { DIST_GAUSSIAN, DIST_RADEMACHER, type NoiseKernel } from './kernel.js';
import { jsKernel } from './js-kernel.js';

/**
 * The little of the WebAssembly JavaScript API used here, typed locally: the project's TypeScript library set
 * (ES2022, Node's types) does not declare the WebAssembly global that every engine it targets provides.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  instantiate(bytes: ArrayBuffer | ArrayBufferView, imports: object): Promise<{ instance: WasmInstance }>;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Global: new (descriptor: { value: string }, value: number) => { value: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** What noise-kernel-wasm.cc exports (pointers are byte offsets into `memory`). */
export interface WasmNoiseExports {
  readonly memory: WasmMemory;
  readonly __heap_base: { readonly value: unknown };
  philox(out: number, c0: number, c1: number, c2: number, c3: number, k0: number, k1: number): void;
  accumulate(slab: number, entries: number, count: number, offset: number, start: number, end: number, distribution: number): void;
  accumulate_portable(
    slab: number,
    entries: number,
    count: number,
    offset: number,
    start: number,
    end: number,
    distribution: number,
  ): void;
  add_scalar(slab: number, length: number, value: number): void;
}

/** The kernel plus the module's own floor loop and its portable path, for benchmarks and tests. */
export interface WasmNoiseKernel extends NoiseKernel {
  readonly exports: WasmNoiseExports;
  /** slab[i] = f32(slab[i] + value), through the module's memory like perturb: the floor benchmarks compare with. */
  addScalar(slab: Float32Array, value: number): void;
  /** accumulate through the portable C++ loops only (no SIMD Gaussian path). */
  accumulatePortable: NoiseKernel['accumulate'];
  /**
   * A zeroed slab of `length` floats inside the module's memory, 64-byte aligned: perturb, accumulate and
   * addScalar work on it (and on any subarray of it) in place, with no copy. onnxruntime-web tensors may be made
   * over it like over any Float32Array. The memory grows to make room, and a grown memory detaches every view of
   * the old buffer: slabs allocated earlier become empty, and passing one to the kernel is an error. So allocate
   * once, with the full size, and keep that slab. The memory is never given back.
   */
  allocateSlab(length: number): Float32Array;
  /**
   * True when the kernel works on `slab` in place (a view of a slab allocateSlab handed out), false when it
   * copies it through. Throws for the views the kernel refuses (see allocateSlab and the errors it names).
   */
  inPlace(slab: Float32Array): boolean;
}

/** Slab elements per copy into the module (256 KiB: cache-sized; a multiple of every block size). */
const CHUNK = 65536;
/** Bytes per entry in the module's memory: { u32 k0, u32 k1, f32 scale } (noise-kernel.h Entry). */
const ENTRY_BYTES = 12;
/** Entries the module's entry area holds (48 KiB); more are applied in batches of this many. */
export const WASM_ENTRY_CAPACITY = 4096;
const PAGE = 65536;
/** A wasm32 memory holds at most 2^32 bytes. */
const MAX_MEMORY = 2 ** 32;

/**
 * Which kernel each WebAssembly memory buffer (current or detached by a grow) belongs to, across all instances:
 * it tells a stale view of a kernel's own memory, and a view of another kernel's memory, from a plain array.
 */
const memoryOwner = new WeakMap<object, object>();

const EXPORTED_FUNCTIONS = ['philox', 'accumulate', 'accumulate_portable', 'add_scalar'] as const;

function checkExports(exports: Record<string, unknown>): WasmNoiseExports {
  if (!(exports.memory instanceof wasmApi.Memory)) throw new TypeError('noise wasm module: missing export memory');
  if (!(exports.__heap_base instanceof wasmApi.Global)) throw new TypeError('noise wasm module: missing export __heap_base');
  for (const name of EXPORTED_FUNCTIONS) {
    if (typeof exports[name] !== 'function') throw new TypeError(`noise wasm module: missing export ${name}()`);
  }
  return exports as unknown as WasmNoiseExports;
}

/** Wraps an instantiated module (its exports checked) as a NoiseKernel. */
export function wasmKernelFromInstance(instance: WasmInstance): WasmNoiseKernel {
  const exports = checkExports(instance.exports);
  const memory = exports.memory;
  // Fixed addresses above the module's statics (which end at __heap_base); see the layout in the file comment.
  const base = (Number(exports.__heap_base.value) + 15) & ~15;
  const wordsAt = base;
  const entriesAt = base + 16;
  const chunkAt = (entriesAt + WASM_ENTRY_CAPACITY * ENTRY_BYTES + 63) & ~63;
  const slabsAt = (chunkAt + CHUNK * 4 + 63) & ~63;
  /** End of the last slab allocated: [slabsAt, top) is the slab area. */
  let top = slabsAt;
  let buffer: ArrayBuffer | undefined;
  let u32 = new Uint32Array(0);
  let f32 = new Float32Array(0);

  // A grown memory has a new buffer, and views of the old one are detached: rebuild them after a grow, and
  // remember every buffer as this kernel's so that a stale view of it is recognised.
  const views = (): void => {
    const current = memory.buffer;
    if (buffer !== current) {
      buffer = current;
      memoryOwner.set(current, exports);
      u32 = new Uint32Array(current);
      f32 = new Float32Array(current);
    }
  };
  const growTo = (bytes: number, what: string): void => {
    const have = memory.buffer.byteLength;
    if (bytes > have) {
      try {
        memory.grow(Math.ceil((bytes - have) / PAGE));
      } catch (err) {
        throw new RangeError(`${what}: the noise kernel's WebAssembly memory could not grow to ${bytes} bytes: ${(err as Error).message}`);
      }
    }
    views();
  };
  /** Writes entries [from, from + count) into the entry area (count ≤ WASM_ENTRY_CAPACITY). */
  const writeEntries = (keys: Uint32Array, coeffs: Float32Array, from: number, count: number): void => {
    for (let k = from, at = entriesAt >>> 2; k < from + count; k++, at += 3) {
      u32[at] = keys[2 * k]!;
      u32[at + 1] = keys[2 * k + 1]!;
      f32[at + 2] = coeffs[k]!;
    }
  };
  /**
   * The byte address the module works on `slab` at: its own, for a view inside the slab area (a Float32Array's
   * byteOffset is always 4-aligned, which is all the module's loads and stores need), or -1 when it must be
   * copied through. Views of module memory that are not slabs would let the kernel write over its scratch, and
   * stale views are empty: both are refused with the reason.
   */
  const placeOf = (slab: Float32Array): number => {
    views();
    const owner = memoryOwner.get(slab.buffer);
    if (owner === undefined) return -1;
    if (owner !== exports) {
      throw new TypeError("slab is a view of another WebAssembly noise kernel's memory: pass it to the kernel whose allocateSlab made it");
    }
    if (slab.buffer !== buffer) {
      throw new TypeError(
        "slab is a view of the noise kernel's WebAssembly memory from before the memory grew, so it is detached (empty): " +
          'allocateSlab grows the memory, which detaches the slabs allocated before; allocate once, with the full size',
      );
    }
    const from = slab.byteOffset;
    const to = from + slab.byteLength;
    if (from < slabsAt || to > top) {
      throw new RangeError(
        `slab is a view of bytes [${from}, ${to}) of the noise kernel's WebAssembly memory, outside the slabs allocateSlab made ([${slabsAt}, ${top})): the kernel keeps its scratch there`,
      );
    }
    return from;
  };
  /**
   * Runs `apply(at, first, from, to)` over slab[start, end): once on the slab itself when it lives in the
   * module's memory, else chunk by chunk, copying each into the module and back.
   */
  const overSlab = (
    slab: Float32Array,
    offset: number,
    start: number,
    end: number,
    /** at: the byte address of element 0 of what it works on, whose global index is `first`. */
    apply: (at: number, first: number, from: number, to: number) => void,
  ): void => {
    const at = placeOf(slab);
    if (at >= 0) {
      apply(at, offset, start, end);
      return;
    }
    const chunk = chunkAt >>> 2;
    for (let i = start; i < end; i += CHUNK) {
      const n = Math.min(CHUNK, end - i);
      f32.set(slab.subarray(i, i + n), chunk);
      apply(chunkAt, offset + i, 0, n);
      // The view may be stale only if the module grew its memory, which it never does; refresh to be safe.
      views();
      slab.set(f32.subarray(chunk, chunk + n), i);
    }
  };
  const accumulateWith =
    (fn: WasmNoiseExports['accumulate']): NoiseKernel['accumulate'] =>
    (...args) => {
      const [slab, keys, coeffs, offset, start, end, distribution] = args;
      if (distribution !== DIST_GAUSSIAN && distribution !== DIST_RADEMACHER) {
        placeOf(slab);
        jsKernel.accumulate(...args);
        return;
      }
      // Entries in batches: each element still sees every entry in order, so the bits are those of one pass.
      for (let from = 0; from < coeffs.length; from += WASM_ENTRY_CAPACITY) {
        const count = Math.min(WASM_ENTRY_CAPACITY, coeffs.length - from);
        writeEntries(keys, coeffs, from, count);
        overSlab(slab, offset, start, end, (at, first, s, e) => fn(at, entriesAt, count, first, s, e, distribution));
      }
    };
  const one = { keys: new Uint32Array(2), coeffs: new Float32Array(1) };

  growTo(slabsAt, 'noise wasm module');
  return {
    kind: 'wasm',
    simd: 'simd128',
    exports,
    philox(out, counter, key) {
      exports.philox(wordsAt, counter[0]!, counter[1]!, counter[2]!, counter[3]!, key[0]!, key[1]!);
      views();
      out.set(u32.subarray(wordsAt >>> 2, (wordsAt >>> 2) + 4));
    },
    perturb(...args) {
      const [slab, k0, k1, scale, offset, start, end, distribution] = args;
      if (distribution !== DIST_GAUSSIAN && distribution !== DIST_RADEMACHER) {
        placeOf(slab);
        jsKernel.perturb(...args);
        return;
      }
      one.keys[0] = k0;
      one.keys[1] = k1;
      one.coeffs[0] = scale;
      writeEntries(one.keys, one.coeffs, 0, 1);
      overSlab(slab, offset, start, end, (at, first, s, e) => exports.accumulate(at, entriesAt, 1, first, s, e, distribution));
    },
    accumulate: accumulateWith(exports.accumulate),
    accumulatePortable: accumulateWith(exports.accumulate_portable),
    addScalar(slab, value) {
      overSlab(slab, 0, 0, slab.length, (at, _first, s, e) => exports.add_scalar(at + 4 * s, e - s, value));
    },
    allocateSlab(length) {
      if (!Number.isSafeInteger(length) || length < 1) {
        throw new RangeError(`allocateSlab: length must be a positive integer (floats), got ${String(length)}`);
      }
      // Arithmetic, not bitwise: addresses reach past 2^31, where JavaScript's bitwise operators wrap.
      const at = Math.ceil(top / 64) * 64;
      const end = at + 4 * length;
      if (end > MAX_MEMORY) {
        throw new RangeError(`allocateSlab: ${length} floats do not fit in the noise kernel's 4 GiB WebAssembly memory (${Math.max(0, MAX_MEMORY - at)} bytes left)`);
      }
      growTo(end, 'allocateSlab');
      top = end;
      // Memory the module never used is zero, and top only rises, so the slab starts zeroed.
      return new Float32Array(memory.buffer, at, length);
    },
    inPlace(slab) {
      return placeOf(slab) >= 0;
    },
    checkSlab(slab) {
      placeOf(slab);
    },
    setThreads() {
      // One thread: a page would need a Worker per thread and a SharedArrayBuffer (cross-origin isolation).
    },
    getThreads() {
      return 1;
    },
  };
}

/** Compiles and instantiates the module's bytes (asynchronously: browsers refuse large synchronous compiles). */
export async function instantiateWasmKernel(bytes: ArrayBuffer | ArrayBufferView): Promise<WasmNoiseKernel> {
  const { instance } = await wasmApi.instantiate(bytes, {});
  return wasmKernelFromInstance(instance);
}
