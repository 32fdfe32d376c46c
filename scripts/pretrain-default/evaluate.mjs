#!/usr/bin/env node
/**
 * Evaluates the committed default model with onnxruntime (createTrainableSession on the prepared model):
 * accuracy and mean cross-entropy on the clean held-out test set (source domain), on the shifted test set
 * (target domain, also per distortion group), and on the devices' own data for a 10-agent job with seed 1.
 *
 * Usage: npm run build && node scripts/pretrain-default/evaluate.mjs [modelDir]
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { createTrainableSession } from '../../dist/shared/model/index.js';
import { defaultTask, loadDefaultModel } from '../../dist/shared/model/default-model.js';

const started = performance.now();
const prepared = await loadDefaultModel(...(process.argv[2] ? [process.argv[2]] : []));
const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
const task = defaultTask({ numAgents: 10, seed: 1 });

/** Accuracy and mean loss over a dataset, or over the rows where keep(i) is true. */
async function evaluate(dataset, keep = () => true) {
  const rows = [];
  for (let i = 0; i < dataset.size; i++) if (keep(i)) rows.push(i);
  const view = dataset.subset(rows);
  let correct = 0;
  let lossSum = 0;
  for (const batch of view.batches(500, { shuffle: false })) {
    const result = await session.run({
      input: new ort.Tensor('float32', batch.features, batch.shape),
      labels: new ort.Tensor('int64', batch.labels, [batch.size]),
    });
    correct += result.correct;
    lossSum += result.loss * batch.size;
  }
  return { n: view.size, accuracy: correct / view.size, loss: lossSum / view.size };
}

const pct = (r) => `${(100 * r.accuracy).toFixed(2)}% (${r.n} digits, loss ${r.loss.toFixed(3)})`;
const clean = await evaluate(task.cleanTest);
const shifted = await evaluate(task.shiftedTest);
console.log(`model: ${prepared.manifest.parameterCount} parameters, slab ${prepared.manifest.slabLength * 4} bytes`);
console.log(`clean test (source):   ${pct(clean)}`);
console.log(`shifted test (target): ${pct(shifted)}`);
console.log(`drop: ${(100 * (clean.accuracy - shifted.accuracy)).toFixed(2)} points`);

// Per group of the shifted test set (each group has its own shift).
console.log('shifted test by group:');
for (const [k, s] of task.shiftedTestShifts.entries()) {
  const r = await evaluate(task.shiftedTest, (i) => task.shiftedTestGroup[i] === k);
  console.log(
    `  group ${k}: rotation ${s.rotationDegrees.toFixed(1).padStart(4)}°, thickness ${s.thickness.toFixed(2)}, ` +
      `noise ${s.noiseStd.toFixed(3)}: ${pct(r)}`,
  );
}

console.log('device data, 10 agents, seed 1 (what each agent starts from):');
for (const [k, agent] of task.agents.entries()) {
  const s = task.shifts[k];
  const r = await evaluate(agent);
  console.log(
    `  agent ${k}: rotation ${s.rotationDegrees.toFixed(1).padStart(4)}°, thickness ${s.thickness.toFixed(2)}, ` +
      `noise ${s.noiseStd.toFixed(3)}: ${pct(r)}`,
  );
}
await session.release();
console.log(`evaluated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
