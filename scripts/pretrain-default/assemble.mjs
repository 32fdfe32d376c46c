#!/usr/bin/env node
/**
 * Step 3 of rebuilding the default model: builds the ONNX graph with the zoo MLP builder (the same graph
 * `buildMlp({ sizes: [784, 128, 64, 10] })` makes), replaces the builder's random initial weights by the
 * pretrained ones from train.py, prepares it for fine-tuning (cross-entropy loss head, every weight trainable)
 * and writes models/default-digits/{model.onnx, base.slab, manifest.json, pretraining.json}.
 *
 * Usage: node scripts/pretrain-default/assemble.mjs [workDir] [outDir]
 *        (defaults build/pretrain-default and models/default-digits)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeModel, encodeModel, loadPrepared, prepareModel, writePrepared } from '../../dist/shared/model/index.js';
import { buildMlp } from '../../dist/shared/model/zoo/index.js';
import {
  DEFAULT_DISTORTION,
  DEFAULT_MODEL_SIZES,
  DEFAULT_SPLIT,
  SHIFTED_TEST,
} from '../../dist/shared/model/default-model.js';

const workDir = resolve(process.argv[2] ?? 'build/pretrain-default');
const outDir = resolve(process.argv[3] ?? 'models/default-digits');
const weightsDir = join(workDir, 'weights');
const trained = JSON.parse(readFileSync(join(weightsDir, 'shapes.json'), 'utf8'));

if (JSON.stringify(trained.sizes) !== JSON.stringify(DEFAULT_MODEL_SIZES)) {
  throw new Error(`trained sizes ${JSON.stringify(trained.sizes)} differ from DEFAULT_MODEL_SIZES ${JSON.stringify(DEFAULT_MODEL_SIZES)}`);
}

const zoo = buildMlp({ sizes: [...DEFAULT_MODEL_SIZES], layer: 'gemm' });
const model = decodeModel(zoo.bytes, 'zoo mlp');
const initializers = model.graph.initializer;
const names = initializers.map((t) => t.name).sort();
const trainedNames = Object.keys(trained.tensors).sort();
if (names.join() !== trainedNames.join()) {
  throw new Error(`the graph has initializers [${names}] but train.py wrote [${trainedNames}]`);
}
for (const tensor of initializers) {
  const dims = tensor.dims.map(Number);
  const shape = trained.tensors[tensor.name];
  if (dims.join() !== shape.join()) throw new Error(`${tensor.name}: graph shape [${dims}] but trained shape [${shape}]`);
  // The .f32 files are little-endian float32, exactly the encoding of ONNX raw_data.
  const bytes = readFileSync(join(weightsDir, `${tensor.name}.f32`));
  const expected = dims.reduce((a, b) => a * b, 1) * 4;
  if (bytes.length !== expected) throw new Error(`${tensor.name}.f32 has ${bytes.length} bytes, expected ${expected}`);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  if (!values.every(Number.isFinite)) throw new Error(`${tensor.name}: non-finite weights`);
  tensor.raw_data = new Uint8Array(bytes);
  delete tensor.float_data;
}
model.doc_string =
  `MLP ${DEFAULT_MODEL_SIZES.join('-')} pretrained on ${DEFAULT_SPLIT.pretrain} clean MNIST digits ` +
  '(default-digits task, docs/default-model.md)';
const source = encodeModel(model);

const prepared = prepareModel(source, { loss: 'cross-entropy' });
for (const warning of prepared.warnings) console.warn(`warning: ${warning}`);
await writePrepared(outDir, prepared, { overwrite: true });

const provenance = {
  model: `MLP ${DEFAULT_MODEL_SIZES.join('-')} (zoo buildMlp, Gemm layers, ReLU)`,
  parameters: prepared.manifest.parameterCount,
  slabBytes: prepared.manifest.slabLength * 4,
  sourceSha256: prepared.manifest.sourceSha256,
  slabSha256: prepared.manifest.slabSha256,
  split: DEFAULT_SPLIT,
  // No wall-clock time here: rebuilding on the same numpy and CPU then reproduces every file byte for byte.
  pretraining: { ...trained.recipe, numpy: trained.numpy },
  numpyAccuracy: trained.accuracy,
  distortion: DEFAULT_DISTORTION,
  shiftedTest: SHIFTED_TEST,
};
writeFileSync(join(outDir, 'pretraining.json'), `${JSON.stringify(provenance, null, 2)}\n`);

const loaded = await loadPrepared(outDir);
console.log(
  `wrote ${outDir}: ${loaded.manifest.parameterCount} parameters, slab ${loaded.manifest.slabLength * 4} bytes, ` +
    `model.onnx ${loaded.model.length} bytes, slab sha256 ${loaded.manifest.slabSha256.slice(0, 16)}…`,
);
