// Writes the data a backprop baseline needs to compare with `mezo simulate` and `mezo train` on the same device
// data, as MZDS files (docs/data.md) that scripts/experiment/bp-curve.py reads:
//   fleet-seed-S.mzds   the union of every simulated agent's distorted share, exactly as `mezo simulate --seed S`
//                       builds them (its default fleet: 100 agents, Dirichlet α = 0.5 by agent, each agent's own
//                       device shift); with --source train-pool, train-pool-seed-S.mzds instead: the pooled
//                       devices of `mezo train --seed S` (10 agents of the default task)
//   test-shifted.mzds   the shifted test set both commands evaluate on
//   test-clean.mzds     the same digits undistorted (the sweep's clean-test accuracy)
//
//   npm run build && node scripts/experiment/export-fleet-data.mjs --seeds 0,1,2 --out DIR [--source fleet|train-pool]
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../dist/', import.meta.url);
const { parseSimulateOptions } = await import(new URL('simulation/simulate.js', root).href);
const { FleetData } = await import(new URL('simulation/fleet-data.js', root).href);
const { defaultSplit, defaultTask } = await import(new URL('shared/model/index.js', root).href);
const { concatDatasets, writeMzds } = await import(new URL('shared/data/index.js', root).href);
const { resolveTrainConfig } = await import(new URL('cli/train-command.js', root).href);

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '0,1,2' },
    out: { type: 'string' },
    source: { type: 'string', default: 'fleet' },
  },
});
if (!args.out) throw new Error('--out is required (the folder to write the MZDS files to)');
if (args.source !== 'fleet' && args.source !== 'train-pool') throw new Error(`--source must be fleet or train-pool, got '${args.source}'`);
const seeds = args.seeds.split(',').map((s) => {
  if (!/^\d+$/.test(s.trim())) throw new Error(`--seeds: '${s}' is not a non-negative integer`);
  return Number(s);
});
const out = resolve(args.out);
mkdirSync(out, { recursive: true });

/** Every agent's share as `mezo simulate` builds it for this seed (its defaults, so the same fleet). */
function simulateFleet(seed) {
  const options = parseSimulateOptions({ seed });
  const data = new FleetData({
    agents: options.agents,
    partitioner: options.partitioner,
    alpha: options.alpha,
    shardsPerAgent: options.shardsPerAgent,
    minPerAgent: options.minPerAgent,
    seed: options.seed,
    // Each share is read once, in order: no need to keep them built.
    cacheShares: 1,
  });
  const shares = Array.from({ length: options.agents }, (_, k) => data.share(k));
  return { dataset: concatDatasets(shares, `simulate-fleet-seed-${seed}`), agents: options.agents, shiftedTest: data.shiftedTest };
}

/** The pooled devices `mezo train` fine-tunes on for this seed (cli/train-command.ts, the default task). */
function trainPool(seed) {
  const config = resolveTrainConfig({ seed: String(seed) }, {});
  const task = defaultTask({ numAgents: config.agents, seed: config.train.seed });
  return { dataset: concatDatasets(task.agents, `train-pool-seed-${seed}`), agents: config.agents, shiftedTest: task.shiftedTest };
}

let shifted;
for (const seed of seeds) {
  const { dataset, agents, shiftedTest } = args.source === 'fleet' ? simulateFleet(seed) : trainPool(seed);
  shifted ??= shiftedTest;
  const file = join(out, `${args.source}-seed-${seed}.mzds`);
  await writeMzds(file, dataset);
  process.stdout.write(`${file}: ${dataset.size} digits from ${agents} agents (seed ${seed})\n`);
}
// The clean digits learning-sweep.mjs scores before and after a run (row i of the shifted set is row i distorted).
const clean = defaultSplit().test;
if (shifted.size !== clean.size) throw new Error(`the shifted test set has ${shifted.size} digits, the clean one ${clean.size}`);
await writeMzds(join(out, 'test-shifted.mzds'), shifted);
await writeMzds(join(out, 'test-clean.mzds'), clean);
process.stdout.write(`test sets: ${shifted.size} shifted and ${clean.size} clean digits in ${out}\n`);
