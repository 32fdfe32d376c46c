import { describe, expect, it } from 'vitest';
import { buildMlp, buildTransformer } from '../../../shared/model/zoo/index.js';
import { prepareModel } from '../../../shared/model/index.js';
import {
  analyzeGraph,
  checkpointedBytes,
  estimateAll,
  estimateMemory,
  familyGraph,
  formatBytes,
  MLP_FAMILY,
  NODE_ORT_BASELINE,
  parseByteSize,
  planGraphFromModel,
  planGraphFromPrepared,
  PlanError,
  TRANSFORMER_FAMILY,
} from '../../../shared/plan/index.js';

describe('memory model', () => {
  const prepared = prepareModel(buildMlp({ sizes: [784, 256, 256, 10] }).bytes);
  const facts = analyzeGraph(planGraphFromPrepared(prepared), { batch: 64 });

  it('reads the weights from the slab and the activations from the graph', () => {
    expect(facts.parameters).toBe(prepared.manifest.parameterCount);
    expect(facts.weightBytes).toBe(prepared.manifest.slabLength * 4);
    expect(facts.layers).toBe(3);
    // Kept for backward: the two ReLU outputs [64, 256], the log-probabilities [64, 10] and the loss head's
    // gather indices (labels as int64 [64, 1]); the data input is held anyway.
    expect(facts.storedActivationBytes).toBe(2 * 64 * 256 * 4 + 64 * 10 * 4 + 64 * 8);
    expect(facts.inputBytes).toBe(64 * 784 * 4 + 64 * 8);
  });

  it('adds gradients and optimizer state per method', () => {
    const mezo = estimateMemory(facts, 'mezo');
    expect(mezo.total).toBe(mezo.weights + facts.forwardPeakBytes + NODE_ORT_BASELINE.bytes);
    const sgd = estimateMemory(facts, 'sgd');
    const momentum = estimateMemory(facts, 'momentum');
    const adam = estimateMemory(facts, 'adam');
    expect(sgd.gradients).toBe(facts.weightBytes);
    expect([sgd.optimizerState, momentum.optimizerState, adam.optimizerState]).toEqual([0, facts.weightBytes, 2 * facts.weightBytes]);
    expect(mezo.total).toBeLessThan(sgd.total);
    expect(sgd.total).toBeLessThan(momentum.total);
    expect(momentum.total).toBeLessThan(adam.total);
    expect(estimateAll(facts).map((e) => `${e.method}${e.checkpointing ? '+ckpt' : ''}`)).toEqual(['mezo', 'sgd', 'sgd+ckpt', 'momentum', 'momentum+ckpt', 'adam', 'adam+ckpt']);
    expect(() => estimateMemory(facts, 'lion' as 'sgd')).toThrow(/method must be one of/);
  });

  it('checkpointing keeps about 2·√L of L layers of activations', () => {
    expect(checkpointedBytes(1000, 1)).toBe(1000);
    expect(checkpointedBytes(1000, 4)).toBe(1000);
    expect(checkpointedBytes(1600, 16)).toBe(800);
    const deep = analyzeGraph(familyGraph(TRANSFORMER_FAMILY, 'layers', 16), { batch: 32 });
    const plain = estimateMemory(deep, 'sgd');
    const ckpt = estimateMemory(deep, 'sgd', { checkpointing: true });
    expect(ckpt.activations).toBeLessThan(plain.activations);
    expect(ckpt.weights + ckpt.gradients).toBe(plain.weights + plain.gradients);
  });

  it('plans a zoo skeleton exactly as the real zoo model', () => {
    for (const [skeleton, real] of [
      [familyGraph(MLP_FAMILY, 'width', 48), planGraphFromModel(buildMlp({ sizes: [784, 48, 48, 10] }).bytes)],
      [familyGraph(TRANSFORMER_FAMILY, 'dim', 32), planGraphFromModel(buildTransformer({ vocab: 1000, dim: 32, heads: 4, layers: 2, seq: 32, classes: 2 }).bytes)],
    ] as const) {
      expect(skeleton.nodes.map((n) => [n.op_type, n.input, n.output])).toEqual(real.nodes.map((n) => [n.op_type, n.input, n.output]));
      expect(analyzeGraph(skeleton, { batch: 8 })).toEqual(analyzeGraph(real, { batch: 8 }));
    }
    // A shapes-only build carries no weight data; a normal build does.
    expect(buildMlp({ sizes: [64, 32], shapesOnly: true }).bytes.length).toBeLessThan(1000);
    expect(buildMlp({ sizes: [64, 32] }).bytes.length).toBeGreaterThan(64 * 32 * 4);
  });

  it('parses and formats byte sizes', () => {
    expect(parseByteSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('800MB')).toBe(800e6);
    expect(parseByteSize('4096')).toBe(4096);
    expect(() => parseByteSize('lots')).toThrow(PlanError);
    expect(() => parseByteSize('0MiB')).toThrow(/positive/);
    expect(formatBytes(3 * 2 ** 20)).toBe('3.0 MiB');
  });
});
