// The default model prepared with only some of its tensors trainable (the rest frozen into the graph), from its
// own pretrained weights: the sparse-perturbation ablation of docs/learning.md. MeZO then perturbs and updates
// only the chosen tensors, and the noise of a zeroth-order step shrinks with their parameter count.
//   npm run build && node scripts/experiment/prepare-subset.mjs --out DIR --trainable 'fc1.*' 'fc2.*'
// The output is a prepared-model directory for `mezo train --model DIR` (with --data: the default task's data
// exported by scripts/experiment/export-fleet-data.mjs --source train-pool).
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { decodeModel, encodeModel, loadDefaultModel, prepareModel, writePrepared } = await import(new URL('shared/model/index.js', root).href);
const { buildMlp } = await import(new URL('shared/model/zoo/index.js', root).href);
const { DEFAULT_MODEL_SIZES } = await import(new URL('shared/model/default-model.js', root).href);

const { values: args } = parseArgs({
  options: { out: { type: 'string' }, trainable: { type: 'string', multiple: true } },
  allowPositionals: true,
});
const trainable = [...(args.trainable ?? [])];
if (!args.out || trainable.length === 0) throw new Error('--out and at least one --trainable pattern are required');

// The same graph the default model was assembled from, with the pretrained values read back from its slab.
const base = await loadDefaultModel();
const model = decodeModel(buildMlp({ sizes: [...DEFAULT_MODEL_SIZES], layer: 'gemm' }).bytes, 'zoo mlp');
for (const tensor of model.graph.initializer) {
  const entry = base.manifest.tensors.find((t) => t.name === tensor.name);
  if (!entry) throw new Error(`the default model has no tensor ${tensor.name}`);
  const values = base.slab.slice(entry.offset, entry.offset + entry.length);
  if (tensor.dims.map(Number).reduce((a, b) => a * b, 1) !== values.length) throw new Error(`${tensor.name}: shape differs from the default model's`);
  tensor.raw_data = new Uint8Array(values.buffer);
  delete tensor.float_data;
}
const prepared = prepareModel(encodeModel(model), { loss: 'cross-entropy', trainable });
await writePrepared(args.out, prepared, { overwrite: true });
console.log(`${args.out}: ${prepared.manifest.tensors.map((t) => t.name).join(', ')} trainable, ${prepared.manifest.parameterCount} parameters`);
