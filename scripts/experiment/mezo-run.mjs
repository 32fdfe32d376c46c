// MeZO training of a prepared model (prepare-mezo.mjs) on the exported digits for a fixed training wall-clock,
// logging test accuracy (shifted test set) against training time and steps. One onnxruntime thread, one noise
// thread, restore by subtraction; evaluation runs at the training batch size, so the process's peak RSS is
// that of training.
//   node --expose-gc scripts/experiment/mezo-run.mjs --data <dir> --model <prepared-dir> --seconds S --lr LR --eps EPS --out log.json
//     [--perturbations Q] [--estimator central|forward] [--distribution gaussian|rademacher] [--schedule constant|cosine]
// The defaults (one Gaussian central-difference perturbation per step, constant lr) are the earlier runs' optimiser.
// With Q perturbations a step evaluates Q seeds and updates θ −= lr/Q · Σ_k g_k z_k (the backend's fused update
// with divisor Q), as `mezo train` does; the forward estimator needs Q ≥ 2.
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
    perturbations: { type: 'string', default: '1' },
    estimator: { type: 'string', default: 'central' },
    distribution: { type: 'string', default: 'gaussian' },
    schedule: { type: 'string', default: 'constant' },
    out: { type: 'string' },
  },
});
if (!args.model || !args.out) throw new Error('--model and --out are required');
const seconds = Number(args.seconds);
const lr = Number(args.lr);
const eps = Number(args.eps);
const batchSize = Number(args.batch);
const evalEvery = Number(args['eval-every']);
const q = Number(args.perturbations);
const estimator = args.estimator;
const distribution = args.distribution;
const schedule = args.schedule;
if (!Number.isInteger(q) || q < 1) throw new Error(`--perturbations must be a positive integer, got ${args.perturbations}`);
if (!['central', 'forward'].includes(estimator)) throw new Error(`--estimator must be central or forward, got ${estimator}`);
if (estimator === 'forward' && q < 2) throw new Error('--estimator forward needs --perturbations 2 or more');
if (!['gaussian', 'rademacher'].includes(distribution)) throw new Error(`--distribution must be gaussian or rademacher, got ${distribution}`);
if (!['constant', 'cosine'].includes(schedule)) throw new Error(`--schedule must be constant or cosine, got ${schedule}`);
// The learning rate at a step. The cosine schedule is time-based, not step-based, because the run has a budget of
// training seconds rather than of steps: lr(t) = peak · ½(1 + cos(π t / T)), t the training seconds elapsed when
// the step starts, T = --seconds.
const lrAt = (t) => (schedule === 'cosine' ? lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(t, seconds) / seconds)) : lr);

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
const backend = await InProcessBackend.create(prepared, engine, { restore: 'subtract', intraOpThreads: 1, slab: prepared.slab, distribution });

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
  // Seeds distinct per step and perturbation, deterministic: step·Q + k + 1 (with Q = 1 the earlier runs' seeds).
  const seeds = Array.from({ length: q }, (_, k) => BigInt(steps * q + k + 1));
  const rule = q === 1 ? { lr: lrAt(trained) } : { lr: lrAt(trained), divisor: q };
  await backend.evaluate(seeds, eps, batch, rule, undefined, estimator);
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
  perturbations: q,
  estimator,
  distribution,
  schedule,
  batch: batchSize,
  seconds,
  steps,
  maxRssKiB: process.resourceUsage().maxRSS,
  log,
};
writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
const last = log.at(-1);
process.stdout.write(`mezo width ${width}: ${steps} steps in ${trained.toFixed(1)} s, accuracy ${(100 * last.accuracy).toFixed(1)} %\n`);
