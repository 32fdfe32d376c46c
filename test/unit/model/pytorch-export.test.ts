import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createTrainableSession, prepareModel } from '../../../shared/model/index.js';

// Models written by PyTorch's own ONNX exporter (test/fixtures/pytorch/export.py, torch 1.13), with the logits
// PyTorch computed for a fixed input: a prepared model must compute the same function with its weights moved
// into the slab.
interface Case {
  file: string;
  input: string;
  shape: number[];
  values: number[];
  logits: number[];
  opset: number;
}
const fixtures = fileURLToPath(new URL('../../fixtures/pytorch/', import.meta.url));
const expected = JSON.parse(readFileSync(`${fixtures}expected.json`, 'utf8')) as { cases: Case[] };

function inputTensor(c: Case): ort.Tensor {
  return c.input === 'tokens'
    ? new ort.Tensor('int64', BigInt64Array.from(c.values, (v) => BigInt(v)), c.shape)
    : new ort.Tensor('float32', Float32Array.from(c.values), c.shape);
}

describe('models exported by PyTorch', () => {
  for (const c of expected.cases) {
    it(`${c.file}: the prepared model reproduces PyTorch's logits, and its loss head their cross-entropy`, async () => {
      const path = `${fixtures}${c.file}`;
      const plain = prepareModel(path, { loss: 'none' });
      expect(plain.manifest.opset).toBe(c.opset);
      expect(plain.manifest.parameterCount).toBeGreaterThan(0);
      const session = await createTrainableSession(plain, { intraOpThreads: 1 });
      const outputs = await session.runOutputs({ [c.input]: inputTensor(c) });
      const logits = outputs.logits!.data as Float32Array;
      expect(logits.length).toBe(c.logits.length);
      for (let i = 0; i < logits.length; i++) expect(Math.abs(logits[i]! - c.logits[i]!)).toBeLessThan(1e-4);
      await session.release();

      const batch = c.shape[0]!;
      const classes = c.logits.length / batch;
      const labels = BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % classes));
      const withLoss = prepareModel(path, { loss: 'cross-entropy' });
      const trainable = await createTrainableSession(withLoss, { intraOpThreads: 1 });
      const { loss, correct } = await trainable.run({ [c.input]: inputTensor(c), labels: new ort.Tensor('int64', labels, [batch]) });
      let expectedLoss = 0;
      let expectedCorrect = 0;
      for (let b = 0; b < batch; b++) {
        const row = c.logits.slice(b * classes, (b + 1) * classes);
        const max = Math.max(...row);
        const logSum = Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0)) + max;
        expectedLoss += (logSum - row[Number(labels[b])]!) / batch;
        if (row.indexOf(max) === Number(labels[b])) expectedCorrect++;
      }
      expect(Math.abs(loss - expectedLoss)).toBeLessThan(1e-4);
      expect(correct).toBe(expectedCorrect);
      await trainable.release();
    });
  }
});
