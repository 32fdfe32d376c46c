import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registerPlanCommand } from '../../../cli/plan-command.js';
import { prepareModel, writePrepared } from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { runCli } from '../../helpers/run-cli.js';

const root = mkdtempSync(join(tmpdir(), 'mezo-plan-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mezo = (...args: string[]) => runCli([registerPlanCommand], ...args);

describe('mezo plan', () => {
  it('prints a table for a prepared model and a plain .onnx file', async () => {
    const zoo = buildMlp({ sizes: [784, 128, 10] });
    const dir = await writePrepared(join(root, 'prepared'), prepareModel(zoo.bytes));
    const result = await mezo('plan', dir, '--batch', '32', '--budget', '200MiB');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/at batch 32: 101,770 parameters, 2 weight layers/);
    expect(result.stdout).toMatch(/^MeZO\s+397\.\d KiB\s+0 B\s+0 B\s+.*1\.00x\s+yes$/m);
    expect(result.stdout).toMatch(/^Adam \+ckpt\s+/m);
    const file = join(root, 'mlp.onnx');
    writeFileSync(file, zoo.bytes);
    const plain = await mezo('plan', file, '--batch', '32', '--json');
    const json = JSON.parse(plain.stdout) as { facts: { parameters: number }; estimates: Array<{ method: string; total: number }>; mezoOverBackprop: Record<string, number> };
    expect(json.facts.parameters).toBe(101_770);
    expect(json.estimates.map((e) => e.method)).toEqual(['mezo', 'sgd', 'sgd', 'momentum', 'momentum', 'adam', 'adam']);
    expect(json.mezoOverBackprop.adam).toBeLessThan(1);
  });

  it('searches a zoo family under a budget', async () => {
    const table = await mezo('plan', 'zoo:mlp', '--batch', '64', '--budget', '512MiB');
    expect(table.stdout).toMatch(/largest mlp by width within 512\.0 MiB at batch 64/);
    expect(table.stdout).toMatch(/MeZO fits \d+\.\d\dx the parameters of Adam/);
    const json = JSON.parse((await mezo('plan', 'zoo:transformer', '--batch', '8', '--budget', '300MiB', '--family-param', 'layers', '--json')).stdout) as {
      param: string;
      fits: Array<{ method: string; checkpointing: boolean; size: number | null }>;
    };
    expect(json.param).toBe('layers');
    expect(json.fits).toHaveLength(7);
    const mezoSize = json.fits[0]!.size!;
    for (const f of json.fits.slice(1)) expect(mezoSize).toBeGreaterThanOrEqual(f.size ?? 0);
    const member = await mezo('plan', 'zoo:transformer', '--batch', '8', '--size', '64', '--json');
    expect(JSON.parse(member.stdout)).toMatchObject({ model: 'transformer v1000 d64 h4 l2 s32', size: 64 });
  });

  it('plans the zoo CNN family: the default member, a member by size, and a budget search over channels or hidden', async () => {
    const member = JSON.parse((await mezo('plan', 'zoo:cnn', '--batch', '16', '--json')).stdout) as { model: string; size: number; param: string; facts: { parameters: number } };
    // buildCnn's defaults: conv 1→8 and 8→16 (3×3), fc 784→64→10.
    expect(member).toMatchObject({ param: 'channels', size: 8, model: 'cnn 1x28x28 c8,16 h64 -> 10' });
    expect(member.facts.parameters).toBe(80 + 1168 + 50_240 + 650);
    const hidden = JSON.parse((await mezo('plan', 'zoo:cnn', '--batch', '16', '--family-param', 'hidden', '--size', '32', '--json')).stdout) as { facts: { parameters: number } };
    expect(hidden.facts.parameters).toBe(80 + 1168 + 784 * 32 + 32 + 32 * 10 + 10);
    const search = JSON.parse((await mezo('plan', 'zoo:cnn', '--batch', '32', '--budget', '200MiB', '--json')).stdout) as {
      fits: Array<{ method: string; size: number | null }>;
    };
    expect(search.fits[0]!.size).toBeGreaterThan(1);
    for (const f of search.fits.slice(1)) expect(search.fits[0]!.size!).toBeGreaterThanOrEqual(f.size ?? 0);
    const table = await mezo('plan', 'zoo:cnn', '--batch', '32', '--budget', '200MiB');
    expect(table.stdout).toMatch(/largest cnn by channels within 200\.0 MiB at batch 32/);
  });

  it('names the problem for bad input, with exit code 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['plan', 'zoo:resnet', '--batch', '1'], /unknown zoo family "resnet"; known: mlp, cnn, transformer/],
      [['plan', 'zoo:cnn', '--batch', '1', '--size', '4096'], /cnn channels must be an integer in \[1, 2048\]/],
      [['plan', 'zoo:mlp', '--batch', '1', '--family-param', 'dim'], /has no size parameter "dim"/],
      [['plan', join(root, 'missing.onnx'), '--batch', '1'], /no such file or directory/],
      [['plan', 'zoo:mlp', '--batch', '1', '--budget', 'big'], /"big" is not a size/],
      [['plan', root, '--batch', '1'], /is not a prepared-model directory/],
      [['plan', 'zoo:mlp', '--batch', '1', '--loss', 'hinge'], /--loss must be one of/],
    ];
    mkdirSync(join(root, 'junk'), { recursive: true });
    writeFileSync(join(root, 'junk', 'x.onnx'), 'not a model');
    cases.push([['plan', join(root, 'junk', 'x.onnx'), '--batch', '1'], /not a valid ONNX model/]);
    for (const [args, message] of cases) {
      const result = await mezo(...args);
      expect({ args, exitCode: result.exitCode }).toEqual({ args, exitCode: 1 });
      expect(result.stderr).toMatch(/^error: /);
      expect(result.stderr).toMatch(message);
    }
    const usage = await mezo('plan', 'zoo:mlp');
    expect(usage.error).toBeDefined();
    expect(usage.stderr).toMatch(/required option '--batch <n>'/);
    const badBatch = await mezo('plan', 'zoo:mlp', '--batch', '0');
    expect(badBatch.stderr).toMatch(/must be a positive integer/);
  });
});
