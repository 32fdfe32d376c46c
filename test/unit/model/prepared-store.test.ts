import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTrainableSession,
  loadPrepared,
  ModelPreparationError,
  prepareModel,
  slabSha256,
  writePrepared,
} from '../../../shared/model/index.js';
import { buildMlp } from '../../../shared/model/zoo/index.js';
import { tempDir, zooBatch } from './model-helpers.js';

const root = tempDir('mezo-store-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const zoo = buildMlp({ sizes: [6, 5, 3], seed: 51 });
let counter = 0;
const freshDir = (): string => join(root, `out-${counter++}`);

async function written(): Promise<string> {
  const dir = freshDir();
  await writePrepared(dir, prepareModel(zoo.bytes));
  return dir;
}

describe('writePrepared / loadPrepared', () => {
  it('round-trips model, slab and manifest, and the loaded model runs', async () => {
    const prepared = prepareModel(zoo.bytes);
    const dir = freshDir();
    await writePrepared(dir, prepared);
    expect(readdirSync(dir).sort()).toEqual(['base.slab', 'manifest.json', 'model.onnx']);
    expect(readFileSync(join(dir, 'base.slab')).length).toBe(prepared.manifest.slabLength * 4);
    // No staging directory is left next to the output.
    expect(readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const loaded = await loadPrepared(dir);
    expect(loaded.manifest).toEqual(prepared.manifest);
    expect(Array.from(loaded.slab)).toEqual(Array.from(prepared.slab));
    expect(Buffer.from(loaded.model).equals(Buffer.from(prepared.model))).toBe(true);
    const { data, labels } = zooBatch(zoo, 4);
    const a = await createTrainableSession(prepared, { intraOpThreads: 1 });
    const b = await createTrainableSession(loaded, { intraOpThreads: 1 });
    expect((await b.run({ input: data, labels })).loss).toBe((await a.run({ input: data, labels })).loss);
    await a.release();
    await b.release();
  });

  it('records the manifest fields an agent needs', () => {
    const { manifest, slab } = prepareModel(zoo.bytes);
    expect(manifest).toMatchObject({
      format: 'mezo-prepared-model',
      formatVersion: 1,
      opset: 13,
      loss: 'cross-entropy',
      lossOutput: 'logits',
      labelInput: { name: 'labels', elemType: 'int64', shape: ['batch'] },
      dataInputs: [{ name: 'input', elemType: 'float32', shape: ['batch', 6] }],
      outputs: ['loss', 'correct'],
      alignment: 16,
      parameterCount: 6 * 5 + 5 + 5 * 3 + 3,
      classes: 3,
    });
    expect(manifest.slabSha256).toBe(slabSha256(slab));
    expect(manifest.sourceSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('detects an edited slab by its sha256', async () => {
    const dir = await written();
    const bytes = readFileSync(join(dir, 'base.slab'));
    bytes[5] = bytes[5]! ^ 0x01;
    writeFileSync(join(dir, 'base.slab'), bytes);
    await expect(loadPrepared(dir)).rejects.toThrow(ModelPreparationError);
    await expect(loadPrepared(dir)).rejects.toThrow(/base\.slab has sha256 [0-9a-f]{64}, but the manifest records [0-9a-f]{64}: the slab was modified or corrupted/);
  });

  it('detects a slab of the wrong length, a missing model and an invalid manifest', async () => {
    const short = await written();
    writeFileSync(join(short, 'base.slab'), readFileSync(join(short, 'base.slab')).subarray(0, 12));
    await expect(loadPrepared(short)).rejects.toThrow(/has 12 bytes, but the manifest says 80 float32 values \(320 bytes\)/);

    const noModel = await written();
    rmSync(join(noModel, 'model.onnx'));
    await expect(loadPrepared(noModel)).rejects.toThrow(/prepared model .*model\.onnx: file not found/);

    const badManifest = await written();
    const manifest = JSON.parse(readFileSync(join(badManifest, 'manifest.json'), 'utf8'));
    manifest.tensors[1].offset = 3;
    manifest.slabSha256 = 'nope';
    writeFileSync(join(badManifest, 'manifest.json'), JSON.stringify(manifest));
    const error = (await loadPrepared(badManifest).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ModelPreparationError);
    expect(error.message).toMatch(/manifest\.json is invalid/);
    expect(error.message).toMatch(/offset 3 is not a multiple of 16/);
    expect(error.message).toMatch(/slabSha256/);

    const notJson = await written();
    writeFileSync(join(notJson, 'manifest.json'), '{ nope');
    await expect(loadPrepared(notJson)).rejects.toThrow(/manifest\.json is not valid JSON/);
    await expect(loadPrepared(join(root, 'absent'))).rejects.toThrow(/prepared model manifest .*manifest\.json: file not found/);
  });

  it('detects a manifest that does not describe the model', async () => {
    const dir = await written();
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    manifest.tensors[0].name = 'renamed';
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await expect(loadPrepared(dir)).rejects.toThrow(/manifest tensor "renamed" is not a model input/);
  });

  it('refuses a non-empty directory unless overwriting, and then replaces the files', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'x');
    const prepared = prepareModel(zoo.bytes);
    await expect(writePrepared(dir, prepared)).rejects.toThrow(/exists and is not empty/);
    expect(readdirSync(dir)).toEqual(['keep.txt']);
    // A trained slab saved as the new base gets a new hash in its manifest.
    prepared.slab[0] = 0.5;
    await writePrepared(dir, prepared, { overwrite: true });
    expect(readdirSync(dir).sort()).toEqual(['base.slab', 'keep.txt', 'manifest.json', 'model.onnx']);
    const loaded = await loadPrepared(dir);
    expect(loaded.slab[0]).toBe(0.5);
    expect(loaded.manifest.slabSha256).not.toBe(prepareModel(zoo.bytes).manifest.slabSha256);
  });

  it('writes into an existing empty directory, and leaves nothing behind when the input is bad', async () => {
    const empty = freshDir();
    mkdirSync(empty);
    await writePrepared(empty, prepareModel(zoo.bytes));
    expect(existsSync(join(empty, 'manifest.json'))).toBe(true);

    const dir = freshDir();
    const prepared = prepareModel(zoo.bytes);
    await expect(writePrepared(dir, { ...prepared, slab: new Float32Array(3) })).rejects.toThrow(/prepared\.slab must be a Float32Array of manifest\.slabLength = 80/);
    await expect(writePrepared(dir, { ...prepared, manifest: { ...prepared.manifest, loss: 'hinge' as 'mse' } })).rejects.toThrow(/loss/);
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
