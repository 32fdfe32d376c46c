// MeZO training of a prepared model (prepare-mezo.mjs) on the exported digits for a fixed training wall-clock,
// logging test accuracy (shifted test set) against training time and steps. One onnxruntime thread, one noise
// thread, restore by subtraction; evaluation runs at the training batch size, so the process's peak RSS is
// that of training.
//   node --expose-gc scripts/experiment/mezo-run.mjs --data <dir> --model <prepared-dir> --seconds S --lr LR --eps EPS --out log.json
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { loadPrepared } = await import(new URL('shared/model/index.js', root).href);
const { createNoiseEngine } = await import(new URL('shared/noise/index.js', root).href);
const { InProcessBackend } = await import(new URL('edge-agent/mezo-backend.js', root).href);

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: 'experiment-out/data' },
    model: { type: 'string' },
    seconds: { type: 'string', default: '60' },
    lr: { type: 'string', default: '1e-4' },
    eps: { type: 'string', default: '1e-3' },
    batch: { type: 'string', default: '64' },
    'eval-every': { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
if (!args.model || !args.out) throw new Error('--model and --out are required');
const seconds = Number(args.seconds);
const lr = Number(args.lr);
const eps = Number(args.eps);
const batchSize = Number(args.batch);
const evalEvery = Number(args['eval-every']);

const load = (name) => {
  const f = readFileSync(join(args.data, `${name}.f32`));
  const l = readFileSync(join(args.data, `${name}.labels.i32`));
  return {
    features: new Float32Array(f.buffer, f.byteOffset, f.byteLength / 4),
    labels: new Int32Array(l.buffer, l.byteOffset, l.byteLength / 4),
  };
};
const train = load('train');
const test = load('test');
const trainRows = train.labels.length;

// A small deterministic generator for batch indices (xorshift32).
let state = Number(args.seed) >>> 0 || 1;
const next = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
};
const batchFeatures = new Float32Array(batchSize * 784);
const batchLabels = new BigInt64Array(batchSize);
const batch = { features: batchFeatures, labels: batchLabels, size: batchSize, shape: [batchSize, 784] };
function drawBatch() {
  for (let i = 0; i < batchSize; i++) {
    const row = next() % trainRows;
    batchFeatures.set(train.features.subarray(row * 784, row * 784 + 784), i * 784);
    batchLabels[i] = BigInt(train.labels[row]);
  }
}

const prepared = await loadPrepared(args.model);
const width = prepared.manifest.tensors.find((t) => t.name === 'fc0.weight').shape[0];
const engine = createNoiseEngine();
engine.setThreads(1);
const backend = await InProcessBackend.create(prepared, engine, { restore: 'subtract', intraOpThreads: 1, slab: prepared.slab });

async function evaluate() {
  let correct = 0;
  let loss = 0;
  const chunk = batchSize;
  for (let start = 0; start < test.labels.length; start += chunk) {
    const size = Math.min(chunk, test.labels.length - start);
    const result = await backend.run({
      features: test.features.subarray(start * 784, (start + size) * 784),
      labels: BigInt64Array.from(test.labels.subarray(start, start + size), (v) => BigInt(v)),
      size,
      shape: [size, 784],
    });
    correct += result.correct ?? 0;
    loss += result.loss * size;
  }
  return { accuracy: correct / test.labels.length, loss: loss / test.labels.length };
}

const log = [];
let trained = 0; // seconds of training, evaluation excluded
let steps = 0;
log.push({ seconds: 0, steps: 0, ...(await evaluate()) });
let nextEval = evalEvery;
while (trained < seconds) {
  const started = process.hrtime.bigint();
  drawBatch();
  await backend.evaluate([BigInt(steps + 1)], eps, batch, { lr });
  steps++;
  trained += Number(process.hrtime.bigint() - started) / 1e9;
  if (trained >= nextEval || trained >= seconds) {
    log.push({ seconds: trained, steps, ...(await evaluate()) });
    nextEval += evalEvery;
  }
}
await backend.close();
const report = {
  method: 'mezo',
  width,
  model: args.model,
  parameters: prepared.manifest.parameterCount,
  lr,
  eps,
  batch: batchSize,
  seconds,
  steps,
  maxRssKiB: process.resourceUsage().maxRSS,
  log,
};
writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
const last = log.at(-1);
process.stdout.write(`mezo width ${width}: ${steps} steps in ${trained.toFixed(1)} s, accuracy ${(100 * last.accuracy).toFixed(1)} %\n`);
