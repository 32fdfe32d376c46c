import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registerPrepareCommand } from '../../../cli/prepare-command.js';
import { registerZooCommand } from '../../../cli/zoo-command.js';
import { loadPrepared } from '../../../shared/model/index.js';
import { tempDir } from './model-helpers.js';
import { runCli } from '../../helpers/run-cli.js';

const root = tempDir('mezo-cli-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mezo = (...args: string[]) => runCli([registerPrepareCommand, registerZooCommand], ...args);

describe('mezo zoo / mezo prepare', () => {
  it('builds a zoo model and prepares it, printing what was selected', async () => {
    const file = join(root, 'mlp.onnx');
    const zoo = await mezo('zoo', 'mlp', '--out', file, '--sizes', '8,4,3', '--seed', '5');
    expect(zoo.error).toBeUndefined();
    expect(zoo.stdout).toMatch(/wrote .*mlp\.onnx: mlp, 51 parameters/);

    const out = join(root, 'prepared');
    const result = await mezo('prepare', file, '--out', out, '--trainable', 'fc1.*');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/selected 2 tensors, 15 parameters, 128 B slab/);
    expect(result.stdout).toMatch(/kept 2 frozen initializers; cross-entropy loss on logits; opset 13/);
    const loaded = await loadPrepared(out);
    expect(loaded.manifest.tensors.map((t) => t.name)).toEqual(['fc1.bias', 'fc1.weight']);
  });

  it('reparametrises tensors with --scale, keeping the function (the slab holds W / factor)', async () => {
    const file = join(root, 'mlp.onnx');
    const plain = join(root, 'plain');
    const scaled = join(root, 'scaled');
    expect((await mezo('prepare', file, '--out', plain)).exitCode).toBe(0);
    const result = await mezo('prepare', file, '--out', scaled, '--scale', 'fc1.*=0.5', 'fc0.bias=2');
    expect(result.exitCode).toBe(0);
    const [a, b] = [await loadPrepared(plain), await loadPrepared(scaled)];
    const at = (p: typeof a, name: string) => {
      const t = p.manifest.tensors.find((x) => x.name === name)!;
      return [...p.slab.subarray(t.offset, t.offset + t.length)];
    };
    expect(at(b, 'fc1.weight')).toEqual(at(a, 'fc1.weight').map((w) => w * 2));
    expect(at(b, 'fc0.bias')).toEqual(at(a, 'fc0.bias').map((w) => w / 2));
    expect(at(b, 'fc0.weight')).toEqual(at(a, 'fc0.weight'));
    const bad = await mezo('prepare', file, '--out', join(root, 'bad'), '--scale', 'fc1.*=0.3');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/--scale\[0\]\.factor must be a power of two/);
    expect((await mezo('prepare', file, '--out', join(root, 'bad'), '--scale', 'fc1.*')).stderr).toMatch(/--scale: each item must be PATTERN=FACTOR/);
    expect(existsSync(join(root, 'bad'))).toBe(false);
  });

  it('builds the CNN and transformer with size flags', async () => {
    const cnn = await mezo('zoo', 'cnn', '--out', join(root, 'cnn.onnx'), '--channels', '2,3', '--hidden', '4', '--classes', '5');
    expect(cnn.stdout).toMatch(/cnn, 694 parameters/);
    const tr = await mezo('zoo', 'transformer', '--out', join(root, 't.onnx'), '--vocab', '10', '--dim', '8', '--heads', '2', '--layers', '1', '--seq', '4', '--ffn', '16');
    expect(tr.error).toBeUndefined();
    const json = await mezo('prepare', join(root, 't.onnx'), '--out', join(root, 't-prepared'), '--loss', 'mse', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ loss: 'mse', lossOutput: 'logits', opset: 17, warnings: [] });
  });

  it('reports errors with exit code 1 and leaves no output directory', async () => {
    const file = join(root, 'small.onnx');
    await mezo('zoo', 'mlp', '--out', file, '--sizes', '4,2');
    const out = join(root, 'never');
    const result = await mezo('prepare', file, '--out', out, '--trainable', 'nothing*');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^error: .*pattern "nothing\*" selects no initializer[^\n]*\n$/);
    expect(existsSync(out)).toBe(false);

    expect((await mezo('prepare', file, '--out', out, '--loss', 'hinge')).stderr).toMatch(/must be 'cross-entropy', 'mse' or 'none'/);
    expect((await mezo('zoo', 'rnn', '--out', join(root, 'x.onnx'))).stderr).toMatch(/must be one of mlp, cnn, transformer/);
    // The missing kind is named first; --out only once the kind is there.
    const bare = await mezo('zoo');
    expect(bare.stderr).toMatch(/missing required argument 'kind'/);
    expect(bare.stderr).not.toMatch(/--out/);
    expect((await mezo('zoo', 'mlp')).stderr).toMatch(/^error: required option '-o, --out <file>' not specified/);
    expect((await mezo('zoo', 'mlp', '--out', join(root, 'x.onnx'), '--sizes', '4,x')).stderr).toMatch(/comma-separated positive integers/);
    const heads = await mezo('zoo', 'transformer', '--out', join(root, 'x.onnx'), '--dim', '10', '--heads', '3');
    expect(heads.stderr).toMatch(/dim \(10\) must be a multiple of heads \(3\)/);
    expect(heads.exitCode).toBe(1);
    expect(existsSync(join(root, 'x.onnx'))).toBe(false);
  });
});
