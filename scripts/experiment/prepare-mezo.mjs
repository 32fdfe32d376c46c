// Writes the zoo MLP 784-W-W-10 as a prepared model (cross-entropy head), its slab loaded from pretrained
// weights (one raw float32 file per tensor, as bp-run.py --save writes them), so the training run only loads it.
//   node scripts/experiment/prepare-mezo.mjs --width W --init <weights-dir> --out <prepared-dir>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { prepareModel, writePrepared } = await import(new URL('shared/model/index.js', root).href);
const { buildMlp } = await import(new URL('shared/model/zoo/index.js', root).href);

const { values: args } = parseArgs({ options: { width: { type: 'string' }, init: { type: 'string' }, out: { type: 'string' } } });
if (!args.width || !args.out) throw new Error('--width and --out are required');
const width = Number(args.width);
const prepared = prepareModel(buildMlp({ sizes: [784, width, width, 10], seed: 1 }).bytes, { loss: 'cross-entropy' });
if (args.init) {
  for (const t of prepared.manifest.tensors) {
    const bytes = readFileSync(join(args.init, `${t.name}.f32`));
    if (bytes.byteLength !== t.length * 4) throw new Error(`${t.name}.f32 has ${bytes.byteLength} bytes, expected ${t.length * 4}`);
    prepared.slab.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), t.offset);
  }
}
const dir = await writePrepared(args.out, prepared);
process.stdout.write(`wrote ${dir}: ${prepared.manifest.parameterCount} parameters\n`);
