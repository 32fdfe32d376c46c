import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { runPrepare } from '../../../cli/prepare-command.js';
import { createTrainableSession, decodeModel, encodeModel, ModelPreparationError, prepareModel } from '../../../shared/model/index.js';
import { DataType } from '../../../shared/model/onnx-types.js';
import { buildMlp, GraphBuilder } from '../../../shared/model/zoo/index.js';
import { tempDir, zooBatch } from './model-helpers.js';

const root = tempDir('mezo-errors-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const zoo = buildMlp({ sizes: [6, 4, 3], seed: 61 });

/** Applies `edit` to a decoded copy of the zoo model and re-encodes it. */
function edited(edit: (model: ReturnType<typeof decodeModel>) => void): Uint8Array {
  const model = decodeModel(Uint8Array.from(zoo.bytes));
  edit(model);
  return encodeModel(model);
}

/** Expects prepareModel to throw ModelPreparationError matching `message`, both from bytes and via the CLI. */
async function expectRejected(bytes: Uint8Array, message: RegExp, options: Parameters<typeof prepareModel>[1] = {}): Promise<void> {
  expect(() => prepareModel(bytes, options)).toThrow(ModelPreparationError);
  expect(() => prepareModel(bytes, options)).toThrow(message);
  const input = join(root, `model-${Math.random().toString(36).slice(2)}.onnx`);
  writeFileSync(input, bytes);
  const out = join(root, `out-${Math.random().toString(36).slice(2)}`);
  const trainable = options.trainable === undefined ? undefined : [String(options.trainable)];
  await expect(
    runPrepare(input, { out, ...(trainable ? { trainable } : {}), ...(options.loss ? { loss: options.loss } : {}), ...(options.output ? { output: options.output } : {}) }),
  ).rejects.toThrow(message);
  // Nothing is written half-way: no output directory, no staging directory.
  expect(existsSync(out)).toBe(false);
}

describe('model preparation errors', () => {
  it('rejects bytes that are not ONNX and truncated files', async () => {
    await expectRejected(new TextEncoder().encode('{"not": "onnx"}'), /not a valid ONNX model/);
    await expectRejected(Uint8Array.from({ length: 256 }, (_, i) => (i * 37) & 0xff), /not a valid ONNX model/);
    await expectRejected(zoo.bytes.subarray(0, Math.floor(zoo.bytes.length / 2)), /not a valid ONNX model .*truncated or not ONNX/);
    expect(() => prepareModel(new Uint8Array(0))).toThrow(/the model is empty/);
    expect(() => prepareModel(join(root, 'missing.onnx'))).toThrow(/cannot read model file .*missing\.onnx/);
  });

  it('rejects opsets older than 13, naming the opset', async () => {
    const old = edited((m) => {
      m.opset_import = [{ domain: '', version: 12 }];
    });
    await expectRejected(old, /opset 12 is not supported; re-export the model with opset 13 or newer/);
    const customOnly = edited((m) => {
      m.opset_import = [{ domain: 'com.example', version: 1 }];
    });
    await expectRejected(customOnly, /imports no ai\.onnx opset/);
  });

  it('rejects names that collide with the loss head', async () => {
    const labelsInput = edited((m) => {
      m.graph!.input![0]!.name = 'labels';
      m.graph!.node![0]!.input![0] = 'labels';
    });
    await expectRejected(labelsInput, /already uses the name\(s\) "labels"/);
    const lossOutput = edited((m) => {
      const last = m.graph!.node!.at(-1)!;
      last.output = ['loss'];
      m.graph!.output![0]!.name = 'loss';
    });
    await expectRejected(lossOutput, /already uses the name\(s\) "loss"/);
    // With an mse head, `labels` is free but `targets` is not.
    const targets = edited((m) => {
      m.graph!.input![0]!.name = 'targets';
      m.graph!.node![0]!.input![0] = 'targets';
    });
    expect(prepareModel(targets).manifest.loss).toBe('cross-entropy');
    await expectRejected(targets, /"targets"/, { loss: 'mse' });
  });

  it('rejects bad options: loss kind, unknown output, output with loss none', async () => {
    await expectRejected(zoo.bytes, /options\.loss must be one of cross-entropy, mse, none, got "hinge"/, { loss: 'hinge' as 'mse' });
    await expectRejected(zoo.bytes, /options\.output "probs" is not a graph output \(outputs: logits\)/, { output: 'probs' });
    expect(() => prepareModel(zoo.bytes, { loss: 'none', output: 'logits' })).toThrow(/options\.loss is 'none'/);
  });

  it('rejects cross-entropy on an output that is not [batch, classes], and non-float outputs', async () => {
    const g = new GraphBuilder({ opset: 13, seed: 1 });
    const x = g.input('x', DataType.FLOAT, ['batch', 2, 3]);
    g.op('Mul', [x, g.weight('scale', [3], { constant: 2 })], 'y');
    g.output('y', DataType.FLOAT, ['batch', 2, 3]);
    const rank3 = g.build('rank3', '');
    await expectRejected(rank3, /cross-entropy needs output "y" of shape \[batch, classes\], but it has rank 3/);
    expect(prepareModel(rank3, { loss: 'mse' }).manifest.labelInput?.shape).toEqual(['batch', 2, 3]);

    const argmax = edited((m) => {
      m.graph!.output![0]!.type!.tensor_type!.elem_type = DataType.INT64;
    });
    await expectRejected(argmax, /output "logits" is int64; the cross-entropy loss needs float32/);
  });
});

describe('batch validation in the trainable session', () => {
  it('names missing, unknown and mistyped feeds, and label/target shape mismatches', async () => {
    const session = await createTrainableSession(prepareModel(zoo.bytes), { intraOpThreads: 1 });
    const { data, labels } = zooBatch(zoo, 4);
    await expect(session.run({ input: data })).rejects.toThrow(/feeds\.labels is missing/);
    await expect(session.run({ input: data, labels, extra: labels })).rejects.toThrow(/feeds\.extra is not an input of this model; expected input, labels/);
    await expect(session.run({ input: data, labels, 'fc0.weight': data })).rejects.toThrow(/it is a trainable weight, fed from the slab/);
    const wrongBatch = new ort.Tensor('int64', new BigInt64Array(3), [3]);
    await expect(session.run({ input: data, labels: wrongBatch })).rejects.toThrow(/feeds\.labels dimension 0 \("batch"\) is 3 but feeds\.input has batch = 4: shapes do not match/);
    const floatLabels = new ort.Tensor('float32', new Float32Array(4), [4]);
    await expect(session.run({ input: data, labels: floatLabels })).rejects.toThrow(/feeds\.labels must be int64, got float32/);
    const wide = new ort.Tensor('float32', new Float32Array(4 * 7), [4, 7]);
    await expect(session.run({ input: wide, labels })).rejects.toThrow(/feeds\.input has shape \[4, 7\] but dimension 1 must be 6/);
    const outOfRange = new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 3n, 0n]), [4]);
    await expect(session.run({ input: data, labels: outOfRange })).rejects.toThrow(/feeds\.labels\[2\] = 3 is outside \[0, 3\)/);
    await session.release();

    const mse = await createTrainableSession(prepareModel(zoo.bytes, { loss: 'mse' }), { intraOpThreads: 1 });
    const targets = new ort.Tensor('float32', new Float32Array(4 * 2), [4, 2]);
    await expect(mse.run({ input: data, targets })).rejects.toThrow(/feeds\.targets has shape \[4, 2\] but dimension 1 must be 3/);
    await mse.release();
  });

  it('rejects a slab of the wrong length and bad thread counts', async () => {
    const prepared = prepareModel(zoo.bytes);
    await expect(createTrainableSession(prepared, { slab: new Float32Array(5) })).rejects.toThrow(/options\.slab must be a Float32Array of 80 values/);
    await expect(createTrainableSession(prepared, { intraOpThreads: 0 })).rejects.toThrow(/options\.intraOpThreads must be an integer in \[1, 1024\], got 0/);
  });
});
