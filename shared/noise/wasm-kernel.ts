/**
 * The WebAssembly noise kernel (shared/noise/wasm/noise-kernel.wasm, built by scripts/build-wasm-noise.mjs from
 * the portable C++ kernel): the same bits as the native addon and the TypeScript kernel, for browsers and any
 * JavaScript engine without the addon. The module works on its own linear memory, so perturb and accumulate copy
 * the slab through it in chunks (a copy costs far less than drawing the noise). Distributions the module does
 * not implement (the low-rank extension) go to the TypeScript kernel, which defines them.
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
}

/** Slab elements per copy into the module (256 KiB: cache-sized; a multiple of every block size). */
const CHUNK = 65536;
/** Bytes per entry in the module's memory: { u32 k0, u32 k1, f32 scale } (noise-kernel.h Entry). */
const ENTRY_BYTES = 12;
const PAGE = 65536;

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
  // The module's statics end at __heap_base; everything above is this adapter's: 16 bytes for philox's output,
  // then the entries, then the slab chunk (moved up when more entries arrive than fit).
  const base = (Number(exports.__heap_base.value) + 15) & ~15;
  const wordsAt = base;
  const entriesAt = base + 16;
  let entryCapacity = 0;
  let chunkAt = 0;
  let buffer: ArrayBuffer | undefined;
  let u32 = new Uint32Array(0);
  let f32 = new Float32Array(0);

  // A grown memory has a new buffer, and views of the old one are detached: rebuild them after a grow.
  const views = (): void => {
    const current = memory.buffer;
    if (buffer !== current) {
      buffer = current;
      u32 = new Uint32Array(current);
      f32 = new Float32Array(current);
    }
  };
  const reserve = (entries: number): void => {
    if (entries <= entryCapacity && chunkAt !== 0) return;
    entryCapacity = Math.max(entries, 64, entryCapacity * 2);
    chunkAt = (entriesAt + entryCapacity * ENTRY_BYTES + 63) & ~63;
    const needed = chunkAt + CHUNK * 4;
    if (needed > memory.buffer.byteLength) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
    views();
  };
  const writeEntries = (keys: Uint32Array, coeffs: Float32Array): void => {
    reserve(coeffs.length);
    for (let k = 0, at = entriesAt >>> 2; k < coeffs.length; k++, at += 3) {
      u32[at] = keys[2 * k]!;
      u32[at + 1] = keys[2 * k + 1]!;
      f32[at + 2] = coeffs[k]!;
    }
  };
  /** Runs `apply` on [start, end) of the slab chunk by chunk, copying each in and out of the module. */
  const throughModule = (
    slab: Float32Array,
    offset: number,
    start: number,
    end: number,
    apply: (chunk: number, chunkOffset: number, length: number) => void,
  ): void => {
    const at = chunkAt >>> 2;
    for (let i = start; i < end; i += CHUNK) {
      const n = Math.min(CHUNK, end - i);
      f32.set(slab.subarray(i, i + n), at);
      apply(chunkAt, offset + i, n);
      // The view may be stale only if the module grew its memory, which it never does; refresh to be safe.
      views();
      slab.set(f32.subarray(at, at + n), i);
    }
  };
  const accumulateWith =
    (fn: WasmNoiseExports['accumulate']): NoiseKernel['accumulate'] =>
    (...args) => {
      const [slab, keys, coeffs, offset, start, end, distribution] = args;
      if (distribution !== DIST_GAUSSIAN && distribution !== DIST_RADEMACHER) {
        jsKernel.accumulate(...args);
        return;
      }
      writeEntries(keys, coeffs);
      const count = coeffs.length;
      throughModule(slab, offset, start, end, (chunk, chunkOffset, n) => fn(chunk, entriesAt, count, chunkOffset, 0, n, distribution));
    };
  const one = { keys: new Uint32Array(2), coeffs: new Float32Array(1) };

  reserve(64);
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
        jsKernel.perturb(...args);
        return;
      }
      one.keys[0] = k0;
      one.keys[1] = k1;
      one.coeffs[0] = scale;
      writeEntries(one.keys, one.coeffs);
      throughModule(slab, offset, start, end, (chunk, chunkOffset, n) =>
        exports.accumulate(chunk, entriesAt, 1, chunkOffset, 0, n, distribution),
      );
    },
    accumulate: accumulateWith(exports.accumulate),
    accumulatePortable: accumulateWith(exports.accumulate_portable),
    addScalar(slab, value) {
      throughModule(slab, 0, 0, slab.length, (chunk, _offset, n) => exports.add_scalar(chunk, n, value));
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
