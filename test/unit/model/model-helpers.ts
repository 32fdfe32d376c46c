/**
 * Shared helpers for the model tests: deterministic batches, reference losses computed in float64 JS from the
 * original model's logits, and a way to save a model with its weights in an external data file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from '../../../shared/model/index.js';
import type { ZooModel } from '../../../shared/model/zoo/index.js';

/** A tiny LCG so batches are deterministic without touching the noise engine. */
export function lcg(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A batch for a zoo model: the data input with concrete batch size (token ids below 32), plus labels in [0, classes). */
export function zooBatch(zoo: ZooModel, batch: number, seed = 7): { data: ort.Tensor; labels: ort.Tensor } {
  const rand = lcg(seed);
  const dims = zoo.input.shape.map((d) => (typeof d === 'number' ? d : batch));
  const count = dims.reduce((a, b) => a * b, 1);
  const data =
    zoo.input.elemType === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from({ length: count }, () => BigInt(Math.floor(rand() * 32))), dims)
      : new ort.Tensor('float32', Float32Array.from({ length: count }, () => rand() * 2 - 1), dims);
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(Math.floor(rand() * zoo.classes))), [batch]);
  return { data, labels };
}

/** Runs an unprepared model (weights as initializers) and returns its logits. */
export async function originalLogits(model: Uint8Array | string, feeds: Record<string, ort.Tensor>, output = 'logits'): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(model as Uint8Array);
  try {
    const out = await session.run(feeds);
    return out[output]!;
  } finally {
    await session.release();
  }
}

/** Mean softmax cross-entropy and correct count, in float64, from [batch, classes] logits. */
export function referenceCrossEntropy(logits: ort.Tensor, labels: ort.Tensor): { loss: number; correct: number } {
  const [batch, classes] = logits.dims as [number, number];
  const z = logits.data as Float32Array;
  const y = labels.data as BigInt64Array;
  let total = 0;
  let correct = 0;
  for (let b = 0; b < batch; b++) {
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < classes; c++) {
      const v = z[b * classes + c]!;
      if (v > max) [max, arg] = [v, c];
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(z[b * classes + c]! - max);
    const label = Number(y[b]!);
    total += -(z[b * classes + label]! - max - Math.log(sum));
    if (arg === label) correct++;
  }
  return { loss: total / batch, correct };
}

export function referenceMse(output: ort.Tensor, targets: ort.Tensor): number {
  const a = output.data as Float32Array;
  const t = targets.data as Float32Array;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - t[i]!) ** 2;
  return sum / a.length;
}

export function tempDir(prefix = 'mezo-model-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Rewrites a model so every initializer's data lives in `dir/weightsFile` (data_location = EXTERNAL), saves
 * the model as `dir/model.onnx` and returns its path.
 */
export function saveWithExternalData(bytes: Uint8Array, dir: string, weightsFile = 'weights.bin'): string {
  const model = decodeModel(bytes);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer ?? []) {
    const raw = t.raw_data!;
    // Exporters align external tensors; 64 bytes mirrors that and exercises non-zero offsets.
    const pad = (64 - (offset % 64)) % 64;
    chunks.push(new Uint8Array(pad), raw);
    offset += pad;
    t.external_data = [
      { key: 'location', value: weightsFile },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.data_location = 1;
    delete t.raw_data;
    offset += raw.length;
  }
  writeFileSync(join(dir, weightsFile), Buffer.concat(chunks));
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(model));
  return path;
}
