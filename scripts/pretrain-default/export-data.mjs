#!/usr/bin/env node
/**
 * Step 1 of rebuilding the default model: writes the data the numpy trainer reads, as MZDS files (the
 * project's binary dataset format, docs/data.md), from the compiled task definition in dist/.
 *
 *   pretrain.mzds       the 4,000 clean pretraining digits (the only data the base model is trained on)
 *   test-clean.mzds     the 1,500 held-out digits
 *   test-shifted.mzds   the same digits under the device distortion family (row i ↔ clean row i)
 *   devices.mzds        the 4,500-digit device pool, distorted as 10 agents with seed 1 would see it; used only
 *                       by check-recovery.py to show how much fine-tuning can win back, never for pretraining
 *
 * Usage: node scripts/pretrain-default/export-data.mjs [workDir]   (default build/pretrain-default)
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeMzds, LocalDataset } from '../../dist/shared/data/index.js';
import { defaultSplit, defaultTask, describeDistortion } from '../../dist/shared/model/default-model.js';

const workDir = resolve(process.argv[2] ?? 'build/pretrain-default');
mkdirSync(workDir, { recursive: true });

const split = defaultSplit();
const task = defaultTask({ numAgents: 10, seed: 1 });

/** All agents' rows in one dataset (agent 0 first). */
function pooled(agents) {
  const width = agents[0].featureSize;
  const total = agents.reduce((a, d) => a + d.size, 0);
  const features = new Float32Array(total * width);
  const labels = new Int32Array(total);
  let row = 0;
  for (const d of agents) {
    for (let i = 0; i < d.size; i++, row++) {
      features.set(d.features(i), row * width);
      labels[row] = d.label(i);
    }
  }
  return new LocalDataset({ features, labels, featureShape: agents[0].featureShape, numClasses: agents[0].numClasses, name: 'devices' });
}

const files = [
  ['pretrain.mzds', split.pretrain],
  ['test-clean.mzds', task.cleanTest],
  ['test-shifted.mzds', task.shiftedTest],
  ['devices.mzds', pooled(task.agents)],
];
for (const [name, dataset] of files) {
  await writeMzds(resolve(workDir, name), dataset);
  console.log(`${name.padEnd(18)} ${String(dataset.size).padStart(5)} digits  classes ${dataset.classCounts().join(' ')}`);
}
console.log(describeDistortion().summary);
console.log(`written to ${workDir}`);
