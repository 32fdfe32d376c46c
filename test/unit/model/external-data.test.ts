import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTrainableSession, decodeModel, encodeModel, ModelPreparationError, prepareModel } from '../../../shared/model/index.js';
import { buildCnn, buildMlp } from '../../../shared/model/zoo/index.js';
import { originalLogits, referenceCrossEntropy, saveWithExternalData, tempDir, zooBatch } from './model-helpers.js';

const root = tempDir('mezo-external-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('models with external data', () => {
  it('reads trainable tensors from the side file and inlines frozen ones into the prepared model', async () => {
    const zoo = buildCnn({ channels: [2, 4], hidden: 8, seed: 41 });
    const dir = join(root, 'cnn');
    mkdirSync(dir);
    const path = saveWithExternalData(zoo.bytes, dir);
    const inline = prepareModel(zoo.bytes, { trainable: 'fc*' });
    const prepared = prepareModel(path, { trainable: 'fc*' });

    expect(prepared.manifest.tensors.map((t) => t.name)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    expect(Array.from(prepared.slab)).toEqual(Array.from(inline.slab));
    expect(prepared.manifest.slabSha256).toBe(inline.manifest.slabSha256);
    // The frozen conv weights now live inside the prepared model: it needs no side file.
    const frozen = decodeModel(prepared.model).graph!.initializer!;
    expect(frozen.map((t) => t.name)).toEqual(['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias']);
    expect(frozen.every((t) => t.data_location === undefined && t.external_data === undefined && (t.raw_data?.length ?? 0) > 0)).toBe(true);

    // The original (external) model loaded by onnxruntime from its path agrees with the prepared one.
    const { data, labels } = zooBatch(zoo, 3);
    const expected = referenceCrossEntropy(await originalLogits(path, { input: data }), labels);
    const session = await createTrainableSession(prepared, { intraOpThreads: 1 });
    expect((await session.run({ input: data, labels })).loss).toBeCloseTo(expected.loss, 5);
    await session.release();
  });

  it('needs a path: bytes alone cannot resolve the side file', () => {
    const dir = join(root, 'bytes-only');
    mkdirSync(dir);
    const path = saveWithExternalData(buildMlp({ sizes: [4, 3], seed: 42 }).bytes, dir);
    const bytes = new Uint8Array(readFileSync(path));
    expect(() => prepareModel(bytes)).toThrow(/keeps its data in an external file; pass the model as a path/);
  });

  it('names a missing or short side file and refuses locations outside the model directory', () => {
    const dir = join(root, 'broken');
    mkdirSync(dir);
    const path = saveWithExternalData(buildMlp({ sizes: [4, 3], seed: 43 }).bytes, dir);
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(10));
    expect(() => prepareModel(path)).toThrow(/data file .*weights\.bin has 10 bytes, too short/);
    rmSync(join(dir, 'weights.bin'));
    expect(() => prepareModel(path)).toThrow(/cannot open data file .*weights\.bin/);

    const model = decodeModel(readFileSync(path));
    model.graph!.initializer![0]!.external_data![0]!.value = '../outside.bin';
    writeFileSync(path, encodeModel(model));
    expect(() => prepareModel(path)).toThrow(ModelPreparationError);
    expect(() => prepareModel(path)).toThrow(/must be a relative path inside the model's directory/);
  });
});
