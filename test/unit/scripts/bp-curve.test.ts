/**
 * The backprop baseline of docs/learning.md: export-fleet-data.mjs writes `mezo simulate`'s own fleet data (the
 * union of its agents' shares) and bp-curve.py fine-tunes the committed base model on it. Checks that the
 * exported rows are the simulated agents' rows, and that the numpy baseline scores the base model as the project
 * does (64.87 % shifted, 96.20 % clean) before its first step and writes a line per evaluation.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMzds } from '../../../shared/data/index.js';
import { FleetData } from '../../../simulation/fleet-data.js';
import { parseSimulateOptions } from '../../../simulation/simulate.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mezo-bp-curve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const hasNumpy = ((): boolean => {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('export-fleet-data.mjs and bp-curve.py', () => {
  beforeAll(async () => {
    const exported = await run(process.execPath, ['scripts/experiment/export-fleet-data.mjs', '--seeds', '3', '--out', dir]);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
  });

  it("exports the union of mezo simulate's agents' shares for the seed, agent after agent", async () => {
    const exported = await readMzds(join(dir, 'fleet-seed-3.mzds'));
    const options = parseSimulateOptions({ seed: 3 });
    const fleet = new FleetData({ ...options, cacheShares: 1 });
    let row = 0;
    for (let k = 0; k < options.agents; k++) {
      const share = fleet.share(k);
      for (const i of [0, share.size - 1]) {
        expect(exported.label(row + i)).toBe(share.label(i));
        expect(Array.from(exported.features(row + i) as Float32Array)).toEqual(Array.from(share.features(i)));
      }
      row += share.size;
    }
    expect(row).toBe(exported.size);
    expect(exported.size).toBe(4500);
  });

  it.skipIf(!hasNumpy)('scores the base model as the project does, then writes one line per evaluation', async () => {
    const out = join(dir, 'bp.jsonl');
    const result = await run('python3', ['scripts/experiment/bp-curve.py', '--data', dir, '--seeds', '3', '--steps', '2', '--eval-every', '1', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    expect(lines.map((l) => [l.step, l.examples, l.seed])).toEqual([[0, 0, 3], [1, 64, 3], [2, 128, 3]]);
    // 973 of the 1,500 shifted digits and 1,443 clean ones: what onnxruntime gives the committed model.
    expect(lines[0]!.shifted).toBeCloseTo(973 / 1500, 12);
    expect(lines[0]!.clean).toBeCloseTo(1443 / 1500, 12);
    expect(lines[0]!.seconds).toBe(0);
    expect(lines[2]!.seconds as number).toBeGreaterThan(0);

    const refused = await run('python3', ['scripts/experiment/bp-curve.py', '--data', dir, '--seeds', '3', '--steps', '0', '--out', out]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--steps: must be a positive integer, got 0');
  });
});
