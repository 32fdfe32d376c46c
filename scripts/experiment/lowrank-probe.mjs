// Prototype of low-rank (LOZO) perturbations on the default task, before the noise contract has them: a
// centralised MeZO loop like `mezo train` (pooled data of the default 10-agent task, q directions per step,
// cosine lr, batch 64), with its own z: dense Gaussian, or z = U·Vᵀ/√r on every weight matrix whose rows and
// cols exceed r (biases Gaussian), V drawn per direction (ν = 1) or once every ν steps and shared by all
// directions in between (ν > 1), U fresh per direction. Only for choosing settings; the real runs go through `mezo train` / `mezo simulate`.
//   npm run build && node scripts/experiment/lowrank-probe.mjs --configs '[{"rank":0,"lr":3.2e-3},{"rank":4,"vPeriod":20,"lr":1e-2}]' --seeds 0 --out probe.jsonl
// rank 0 is the dense Gaussian baseline.
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { loadDefaultModel, defaultTask, createTrainableSession } = await import(new URL('shared/model/index.js', root).href);
const { concatDatasets, rngFor } = await import(new URL('shared/data/index.js', root).href);
const { feedsForBatch } = await import(new URL('edge-agent/batch-feeds.js', root).href);
const { noise } = await import(new URL('shared/noise/index.js', root).href);

const { values: args } = parseArgs({
  options: {
    configs: { type: 'string' },
    seeds: { type: 'string', default: '0' },
    steps: { type: 'string', default: '2000' },
    q: { type: 'string', default: '16' },
    batch: { type: 'string', default: '64' },
    epsilon: { type: 'string', default: '1e-3' },
    out: { type: 'string' },
  },
});
if (!args.configs || !args.out) throw new Error('--configs and --out are required');
const configs = JSON.parse(args.configs);
const seeds = args.seeds.split(',').map(Number);
const steps = Number(args.steps);
const q = Number(args.q);
const batchSize = Number(args.batch);
const epsilon = Number(args.epsilon);

const prepared = await loadDefaultModel();
const { manifest } = prepared;
const d = manifest.slabLength;

function seed64(rng) {
  return BigInt(rng.nextUint32()) | (BigInt(rng.nextUint32()) << 32n);
}

/** Fills z with one direction: dense Gaussian (rank 0) or low rank on the matrices, Gaussian elsewhere. */
function makeDirection(z, rank, matrices, uSeed, vBuffers) {
  noise.sample(z, uSeed); // Gaussian everywhere; matrices are overwritten below
  if (rank === 0) return;
  const c = 1 / Math.sqrt(rank);
  matrices.forEach((mat, j) => {
    const { offset, rows, cols } = mat;
    const u = new Float32Array(rows * rank);
    noise.sample(u, uSeed, { offset: offset + 7 }); // any stream disjoint enough from V's for a probe
    const v = vBuffers[j];
    for (let a = 0; a < rows; a++) {
      const base = offset + a * cols;
      for (let b = 0; b < cols; b++) {
        let acc = 0;
        for (let k = 0; k < rank; k++) acc += u[a * rank + k] * v[b * rank + k];
        z[base + b] = acc * c;
      }
    }
  });
}

async function accuracyOn(session, dataset) {
  let correct = 0;
  let loss = 0;
  for (const batch of dataset.batches(500, { seed: 0, epoch: 0, shuffle: false })) {
    const r = await session.run(feedsForBatch(manifest, batch));
    correct += r.correct;
    loss += r.loss * batch.size;
  }
  return { accuracy: correct / dataset.size, loss: loss / dataset.size };
}

async function run(config, seed) {
  const rank = config.rank ?? 0;
  const vPeriod = config.vPeriod ?? 1;
  const lr0 = config.lr;
  const matrices = rank === 0 ? [] : manifest.tensors
    .filter((t) => t.shape.length >= 2)
    .map((t) => ({ offset: t.offset, rows: t.shape[0], cols: t.shape.slice(1).reduce((a, b) => a * b, 1) }))
    .filter((m) => m.rows > rank && m.cols > rank);
  const theta = prepared.slab.slice();
  const work = theta.slice();
  const session = await createTrainableSession(prepared, { slab: work, intraOpThreads: 1 });
  const task = defaultTask({ numAgents: 10, seed });
  const train = concatDatasets(task.agents, 'probe');
  const z = new Float32Array(d);
  const delta = new Float64Array(d);
  const rng = rngFor(seed, 'lowrank-probe');
  let vBuffers = [];
  const drawV = (vSeed) =>
    matrices.map((m) => {
      const v = new Float32Array(m.cols * rank);
      noise.sample(v, vSeed, { offset: m.offset });
      return v;
    });
  const started = performance.now();
  let epoch = 0;
  let batches = train.batches(batchSize, { seed, epoch, dropLast: true });
  let diverged = false;
  for (let t = 0; t < steps && !diverged; t++) {
    let next = batches.next();
    if (next.done) {
      epoch++;
      batches = train.batches(batchSize, { seed, epoch, dropLast: true });
      next = batches.next();
    }
    const feeds = feedsForBatch(manifest, next.value);
    // ν = 1: every direction its own V (fresh 64-bit seeds, as the system draws them); ν > 1: one V for all
    // directions of ν consecutive steps (the seed's high word fixed over the window).
    if (rank > 0 && vPeriod > 1 && t % vPeriod === 0) vBuffers = drawV(seed64(rng));
    const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * t) / steps));
    delta.fill(0);
    for (let k = 0; k < q; k++) {
      if (rank > 0 && vPeriod === 1) vBuffers = drawV(seed64(rng));
      makeDirection(z, rank, matrices, seed64(rng), vBuffers);
      for (let i = 0; i < d; i++) work[i] = theta[i] + epsilon * z[i];
      const plus = (await session.run(feeds)).loss;
      for (let i = 0; i < d; i++) work[i] = theta[i] - epsilon * z[i];
      const minus = (await session.run(feeds)).loss;
      const g = (plus - minus) / (2 * epsilon);
      if (!Number.isFinite(g)) { diverged = true; break; }
      for (let i = 0; i < d; i++) delta[i] += g * z[i];
    }
    for (let i = 0; i < d; i++) theta[i] -= (lr / q) * delta[i];
  }
  work.set(theta);
  const shifted = await accuracyOn(session, task.shiftedTest);
  const clean = await accuracyOn(session, task.cleanTest);
  await session.release();
  const line = {
    ...config, seed, steps, q, batchSize, epsilon,
    shifted: shifted.accuracy, shiftedLoss: shifted.loss, clean: clean.accuracy, diverged,
    seconds: (performance.now() - started) / 1000,
  };
  appendFileSync(args.out, `${JSON.stringify(line)}\n`);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

for (const config of configs) for (const seed of seeds) await run(config, seed);
