// Writes the default digits task as flat binary files both trainers read: the clean pretraining digits (the
// cloud stage), the pooled device data of 10 simulated devices (each distorted by its own camera shift) for
// fine-tuning, and the shifted test set.
//   node scripts/experiment/export-digits.mjs <out-dir>        (run `npm run build` first)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../dist/', import.meta.url);
const { defaultSplit, defaultTask } = await import(new URL('shared/model/default-model.js', root).href);

const out = process.argv[2] ?? 'experiment-out/data';
mkdirSync(out, { recursive: true });
const task = defaultTask({ numAgents: 10, seed: 1 });

function write(name, datasets) {
  const rows = datasets.reduce((a, d) => a + d.size, 0);
  const features = new Float32Array(rows * 784);
  const labels = new Int32Array(rows);
  let r = 0;
  for (const d of datasets) {
    for (let i = 0; i < d.size; i++, r++) {
      features.set(d.features(i), r * 784);
      labels[r] = d.label(i);
    }
  }
  writeFileSync(join(out, `${name}.f32`), new Uint8Array(features.buffer));
  writeFileSync(join(out, `${name}.labels.i32`), new Uint8Array(labels.buffer));
  return rows;
}

const meta = {
  pretrain: write('pretrain', [defaultSplit().pretrain]),
  train: write('train', task.agents),
  test: write('test', [task.shiftedTest]),
  features: 784,
  classes: 10,
  description: `default digits task: pretrain = clean pretraining split; train = 10 devices pooled (seed 1), ${task.distortion.summary}; test = shifted test set`,
};
writeFileSync(join(out, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
process.stdout.write(`wrote ${meta.train} training and ${meta.test} test digits to ${out}\n`);
