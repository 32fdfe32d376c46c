/**
 * `npm run bench [-- suite ...]`: runs the benchmark suites (all by default), writes bench-results/<suite>.json
 * and prints a table per suite. Figures quoted in docs/benchmarks.md come from these files.
 */
import { report, type SuiteResult } from './harness.js';
import { benchAttack } from './attack-bench.js';
import { benchCompaction } from './compaction-bench.js';
import { benchFleet } from './fleet-bench.js';
import { benchModelForward } from './model-forward.js';
import { benchNoise } from './noise-bench.js';
import { benchPlanValidation } from './plan-validation.js';
import { benchPrivacy } from './privacy-bench.js';
import { benchSimulate } from './simulate-bench.js';
import { benchTrainer } from './trainer-bench.js';

const suites: Record<string, () => Promise<SuiteResult>> = {
  noise: () => benchNoise(),
  'model-forward': () => benchModelForward(),
  trainer: () => benchTrainer(),
  fleet: () => benchFleet(),
  'plan-validation': () => benchPlanValidation(),
  compaction: () => benchCompaction(),
  simulate: () => benchSimulate(),
  attack: () => benchAttack(),
  privacy: () => benchPrivacy(),
};

const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = requested.filter((name) => !(name in suites));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench suite(s): ${unknown.join(', ')}; available: ${Object.keys(suites).join(', ')}\n`);
  process.exit(2);
}
for (const name of requested.length > 0 ? requested : Object.keys(suites)) {
  const result = await suites[name]!();
  const file = report(result);
  process.stdout.write(`\nwrote ${file}\n`);
}
