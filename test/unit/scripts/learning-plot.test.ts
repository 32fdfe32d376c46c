/**
 * scripts/experiment/learning-plot.mjs: reads learning-sweep.mjs and bp-curve.py JSON lines and draws the
 * learning charts of docs/learning.md with the report's chart code. Runs the script (from dist/, as documented)
 * on small hand-made runs and checks what the charts say: labels, the backprop configuration chosen and its
 * final level, PNGs, and the errors for inputs it cannot use.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/experiment/learning-plot.mjs');
const dir = mkdtempSync(join(tmpdir(), 'mezo-learning-plot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jsonl = (name: string, lines: object[]): string => {
  const file = join(dir, name);
  writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return file;
};

// Two seeds of a simulate configuration (curve: [round index, accuracy]) and one mezo train run.
const simulate = jsonl('simulate.jsonl', [
  { name: 'sim', seed: 0, accuracyBefore: 0.65, cleanBefore: 0.96, cleanAfter: 0.9, curve: [[0, 0.7], [1, 0.8]], curveSeconds: [1, 2] },
  { name: 'sim', seed: 1, accuracyBefore: 0.65, cleanBefore: 0.96, cleanAfter: 0.88, curve: [[0, 0.72], [1, 0.84]], curveSeconds: [1.5, 3] },
]);
const train = jsonl('train.jsonl', [
  { name: 'trn', seed: 0, command: 'train', accuracyBefore: 0.65, cleanBefore: 0.96, cleanAfter: 0.91, curve: [[0, 0.65], [10, 0.81]], curveSeconds: [0, 4], curveSecondsDerived: true },
]);
const bpLine = (name: string, seed: number, step: number, shifted: number, clean: number): object => ({ name, seed, step, examples: step * 64, seconds: step / 10, shifted, clean });
const backprop = jsonl('backprop.jsonl', [
  bpLine('bp good', 0, 0, 0.65, 0.96),
  bpLine('bp good', 0, 5, 0.94, 0.88),
  bpLine('bp good', 1, 0, 0.65, 0.96),
  bpLine('bp good', 1, 5, 0.96, 0.9),
  bpLine('bp worse', 0, 0, 0.65, 0.96),
  bpLine('bp worse', 0, 5, 0.9, 0.93),
]);

function plot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('learning-plot.mjs', () => {
  it('draws every configuration, the best backprop run and its final level, by round, second and clean accuracy', async () => {
    const out = join(dir, 'charts');
    const result = await plot(simulate, train, '--label', 'simulate', '--label', 'train', '--backprop', backprop, '--out', out, '--png');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rounds = readFileSync(join(out, 'learning-rounds.svg'), 'utf8');
    expect(rounds).toContain('simulate (2 seeds)');
    expect(rounds).toContain('train (1 seed)');
    // The default backprop configuration is the one with the best mean final shifted accuracy: (0.94 + 0.96) / 2.
    expect(rounds).toContain('bp good (2 seeds)');
    expect(rounds).not.toContain('bp worse');
    expect(rounds).toContain('backprop final 95.0 %');
    // The bold line of a configuration is the mean of its seeds' pale lines, point by point (the axes are linear:
    // the mean of the pixel positions is the position of the mean), the base evaluation included.
    const lines = (svg: string, stroke: string): number[][][] =>
      [...svg.matchAll(new RegExp(`<path d="([^"]+)" fill="none" stroke="${stroke}"`, 'g'))].map((m) =>
        m[1]!.split(/[ML]/).filter(Boolean).map((p) => p.split(' ').map(Number)),
      );
    const seconds = readFileSync(join(out, 'learning-seconds.svg'), 'utf8');
    for (const svg of [rounds, seconds]) {
      const seeds = lines(svg, '#acc4f7');
      const means = lines(svg, '#2563eb');
      expect(seeds).toHaveLength(2);
      expect(means.length).toBeGreaterThan(0);
      expect(means[0]).toHaveLength(3);
      means[0]!.forEach(([x, y], i) => {
        expect(x).toBeCloseTo((seeds[0]![i]![0]! + seeds[1]![i]![0]!) / 2, 1);
        expect(y).toBeCloseTo((seeds[0]![i]![1]! + seeds[1]![i]![1]!) / 2, 1);
      });
    }
    expect(seconds).toContain('backprop final 95.0 %');
    // Clean accuracy: backprop's mean final clean level, (0.88 + 0.90) / 2.
    expect(readFileSync(join(out, 'learning-clean.svg'), 'utf8')).toContain('backprop final 89.0 %');
    for (const kind of ['rounds', 'seconds', 'clean']) {
      expect(readFileSync(join(out, `learning-${kind}.png`)).subarray(0, 4).toString('latin1')).toBe('\x89PNG');
    }
    // mezo train's seconds are derived from its steps, and the script says so.
    expect(result.stdout).toContain('seconds of train are placed at step / steps');
    // The summary: final mean ± sd over seeds, the share of backprop's gain over the base (0.65), the end and
    // where the mean curve first reaches each level.
    expect(result.stdout).toContain('| simulate | 0, 1 | 82.00 ± 2.83 % | 57 % | 2 | 2.5 | — | — | — | — |');
    expect(result.stdout).toContain('| bp good | 0, 1 | 95.00 ± 1.41 % | 100 % | 5 | 0.5 | 5 (0.5 s) | 5 (0.5 s) | 5 (0.5 s) | 5 (0.5 s) |');
  });

  it('uses the backprop configuration named by --backprop-name and its label', async () => {
    const out = join(dir, 'named');
    const result = await plot(simulate, '--backprop', backprop, '--backprop-name', 'bp worse', '--backprop-label', 'Adam', '--out', out, '--prefix', 'x');
    expect(result.code).toBe(0);
    const rounds = readFileSync(join(out, 'x-rounds.svg'), 'utf8');
    expect(rounds).toContain('Adam (1 seed)');
    expect(rounds).toContain('backprop final 90.0 %');
    expect(readFileSync(join(out, 'x-clean.svg'), 'utf8')).toContain('backprop final 93.0 %');
  });

  it('refuses inputs it cannot use, naming the argument or the run', async () => {
    const out = join(dir, 'refused');
    const labels = await plot(simulate, '--label', 'a', '--label', 'b', '--out', out);
    expect(labels.code).not.toBe(0);
    expect(labels.stderr).toContain('--label: 2 labels for 1 sweep files');

    const noCurve = jsonl('no-curve.jsonl', [{ name: 'broken', seed: 3, accuracyAfter: 0.8 }]);
    const broken = await plot(noCurve, '--out', out);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain("run 'broken' seed 3: no curve");

    const unknown = await plot(simulate, '--backprop', backprop, '--backprop-name', 'sgd', '--out', out);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("--backprop-name: no 'sgd' in the backprop files (they hold: bp good, bp worse)");

    const notBackprop = await plot(simulate, '--backprop', simulate, '--out', out);
    expect(notBackprop.code).not.toBe(0);
    expect(notBackprop.stderr).toContain('has no numeric step (not bp-curve.py output?)');
  });
});
