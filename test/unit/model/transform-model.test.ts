/**
 * Transforms of a prepared model (shared/model/transform-model.ts) on the real default model and onnxruntime:
 * narrowing the trainable tensors and reparametrising some as s · W' both leave the model's function unchanged
 * bit for bit, and change only what a zeroth-order step moves.
 */
import { describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../../edge-agent/mezo-backend.js';
import { scoreDataset } from '../../../edge-agent/dataset-evaluation.js';
import {
  ModelPreparationError,
  decodeModel,
  defaultSplit,
  loadDefaultModel,
  narrowTrainable,
  scaleTrainable,
  type PreparedModel,
} from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';

const clean = defaultSplit().test;

async function score(prepared: PreparedModel, slab = prepared.slab): Promise<{ loss: number; accuracy: number }> {
  const backend = await InProcessBackend.create(prepared, noise, { restore: 'subtract', intraOpThreads: 1 });
  try {
    await backend.load(slab.slice());
    const { loss, accuracy } = await scoreDataset(backend, clean, 500);
    return { loss, accuracy };
  } finally {
    await backend.close();
  }
}

const tensor = (p: PreparedModel, name: string): Float32Array => {
  const t = p.manifest.tensors.find((x) => x.name === name)!;
  return p.slab.subarray(t.offset, t.offset + t.length);
};

describe('narrowTrainable', () => {
  it('freezes the tensors not selected and computes the same loss, bit for bit', async () => {
    const full = await loadDefaultModel();
    const narrowed = narrowTrainable(full, ['fc0.*']);
    expect(narrowed.manifest.tensors.map((t) => t.name).sort()).toEqual(['fc0.bias', 'fc0.weight']);
    expect(narrowed.manifest.parameterCount).toBe(128 + 784 * 128);
    expect(tensor(narrowed, 'fc0.weight')).toEqual(tensor(full, 'fc0.weight'));
    // The frozen tensors are initializers now, and no longer inputs.
    const graph = decodeModel(narrowed.model).graph!;
    expect((graph.initializer ?? []).map((t) => t.name)).toEqual(expect.arrayContaining(['fc1.weight', 'fc2.bias']));
    expect((graph.input ?? []).map((v) => v.name)).not.toContain('fc1.weight');
    expect(await score(narrowed)).toEqual(await score(full));
    expect(full.manifest.parameterCount).toBe(109_386); // the input is not modified
  });

  it('names a pattern that selects nothing', async () => {
    const full = await loadDefaultModel();
    expect(() => narrowTrainable(full, ['conv*'])).toThrow(ModelPreparationError);
    expect(() => narrowTrainable(full, ['conv*'])).toThrow(/conv\*/);
  });
});

describe('scaleTrainable', () => {
  it('stores W / s, multiplies it back in the graph and keeps the function bit for bit', async () => {
    const full = await loadDefaultModel();
    const scaled = scaleTrainable(full, [{ pattern: 'fc2.*', factor: 0.25 }]);
    expect(scaled.manifest.tensors).toEqual(full.manifest.tensors);
    expect(scaled.manifest.slabSha256).not.toBe(full.manifest.slabSha256);
    expect(tensor(scaled, 'fc2.weight')).toEqual(tensor(full, 'fc2.weight').map((w) => w * 4));
    expect(tensor(scaled, 'fc0.weight')).toEqual(tensor(full, 'fc0.weight'));
    expect(await score(scaled)).toEqual(await score(full));
  });

  it('moves a scaled tensor s times as far per direction', async () => {
    const full = await loadDefaultModel();
    const scaled = scaleTrainable(full, [{ pattern: 'fc1.weight', factor: 0.5 }]);
    const seed = 77n;
    const a = full.slab.slice();
    const b = scaled.slab.slice();
    noise.perturb(a, seed, 1e-2, { distribution: 'rademacher' });
    noise.perturb(b, seed, 1e-2, { distribution: 'rademacher' });
    const t = full.manifest.tensors.find((x) => x.name === 'fc1.weight')!;
    for (let i = t.offset; i < t.offset + t.length; i += 97) {
      // The weight the graph sees is 0.5 · b; its step is half the unscaled step.
      expect(0.5 * b[i]! - full.slab[i]!).toBeCloseTo(0.5 * (a[i]! - full.slab[i]!), 6);
    }
    const u = full.manifest.tensors.find((x) => x.name === 'fc0.weight')!;
    expect(b.subarray(u.offset, u.offset + u.length)).toEqual(a.subarray(u.offset, u.offset + u.length));
  });

  it('composes with narrowTrainable: the scale is a constant, never trainable', async () => {
    const full = await loadDefaultModel();
    const scaled = scaleTrainable(full, [{ pattern: 'fc{1,2}.*', factor: 0.5 }]);
    const narrowed = narrowTrainable(scaled, ['*']);
    expect(narrowed.manifest.tensors.map((t) => t.name)).toEqual(full.manifest.tensors.map((t) => t.name));
    expect(narrowed.slab).toEqual(scaled.slab);
    expect(await score(narrowed)).toEqual(await score(full));
  });

  it('refuses factors that are not powers of two, patterns that select nothing and a second scaling', async () => {
    const full = await loadDefaultModel();
    expect(() => scaleTrainable(full, [{ pattern: 'fc2.*', factor: 0.3 }])).toThrow(/scales\[0\]\.factor must be a power of two/);
    expect(() => scaleTrainable(full, [{ pattern: 'fc2.*', factor: 2 ** 13 }])).toThrow(/scales\[0\]\.factor/);
    expect(() => scaleTrainable(full, [{ pattern: 'head.*', factor: 0.5 }])).toThrow(/scales: pattern "head\.\*" selects no trainable tensor/);
    const once = scaleTrainable(full, [{ pattern: 'fc2.bias', factor: 0.5 }]);
    expect(() => scaleTrainable(once, [{ pattern: 'fc2.bias', factor: 0.5 }])).toThrow(/already uses the name "fc2\.bias\/scaled"/);
    // A factor of 1 changes nothing.
    expect(scaleTrainable(full, [{ pattern: 'fc2.*', factor: 1 }])).toBe(full);
  });
});
