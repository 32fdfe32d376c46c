/**
 * Loads the WebAssembly noise kernel in Node.js from the file the package ships (shared/noise/wasm/, built by
 * scripts/build-wasm-noise.mjs): for tests, benchmarks and `MEZO_NOISE`-style comparisons with the addon.
 * Browsers fetch the same file and call instantiateWasmKernel (wasm-kernel.ts) themselves.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instantiateWasmKernel, type WasmNoiseKernel } from './wasm-kernel.js';

/** The module's path inside the package: next to the sources in the tree, the same path from dist/. */
export function wasmKernelPath(): string {
  for (const rel of ['../../', '../../../']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'shared/noise/wasm/noise-kernel.wasm');
  }
  throw new Error('noise wasm module: package root not found above shared/noise');
}

export async function loadWasmKernel(path = wasmKernelPath()): Promise<WasmNoiseKernel> {
  return instantiateWasmKernel(await readFile(path));
}
