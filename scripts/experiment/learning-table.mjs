// Summarises learning-sweep.mjs output: one Markdown row per configuration name, with the mean ± sample standard
// deviation over its seeds of the shifted-test accuracy, the clean-test accuracy and the wall time, the largest
// drop below the running best, the share of backprop's gain, and bytes per agent per round.
//   node scripts/experiment/learning-table.mjs runs.jsonl [--backprop 0.957]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({ allowPositionals: true, options: { backprop: { type: 'string', default: '0.957' } } });
const backprop = Number(args.backprop);
const runs = positionals.flatMap((file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line)),
);
const byName = new Map();
for (const run of runs) byName.set(run.name, [...(byName.get(run.name) ?? []), run]);

const stats = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : Number.NaN;
  return { mean, sd };
};
const pct = ({ mean, sd }) => `${(mean * 100).toFixed(2)}${Number.isNaN(sd) ? '' : ` ± ${(sd * 100).toFixed(2)}`} %`;

console.log('| configuration | seeds | shifted-test accuracy | share of backprop\'s gain | worst drop below running best | clean-test accuracy | wall time | B up / down per agent per round |');
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const [name, group] of byName) {
  const acc = stats(group.map((r) => r.accuracyAfter));
  const before = group[0].accuracyBefore;
  const share = (acc.mean - before) / (backprop - before);
  const clean = stats(group.map((r) => r.cleanAfter));
  const wall = stats(group.map((r) => r.trainSeconds ?? r.wallSeconds));
  const drop = Math.max(...group.map((r) => r.worstDrop));
  const bytes = group[0].bytesUpPerAgentRound === undefined ? '—' : `${group[0].bytesUpPerAgentRound.toFixed(1)} / ${group[0].bytesDownPerAgentRound.toFixed(1)}`;
  console.log(
    `| ${name} | ${group.map((r) => r.seed).join(', ')} | ${pct(acc)} | ${(share * 100).toFixed(0)} % | ${(drop * 100).toFixed(2)} pt | ${pct(clean)} | ${wall.mean.toFixed(1)} s | ${bytes} |`,
  );
}
