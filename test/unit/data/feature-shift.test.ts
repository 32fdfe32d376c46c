import { describe, expect, it } from 'vitest';
import {
  changeThickness,
  drawAgentShifts,
  loadMnist,
  partitionIid,
  rotateBilinear,
  shiftAgentFeatures,
} from '../../../shared/data/index.js';

const digits = loadMnist({ shape: 'image', perClass: 30 });
const partition = partitionIid(digits, { numAgents: 4, seed: 1 });
const sum = (a: Float32Array): number => a.reduce((s, v) => s + v, 0);

describe('image ops', () => {
  const img = Float32Array.from(digits.features(3));

  it('rotates by 0° exactly and by 90° counter-clockwise as a pixel permutation', () => {
    const out = new Float32Array(784);
    rotateBilinear(img, out, 28, 28, 0);
    expect(Array.from(out)).toEqual(Array.from(img));
    rotateBilinear(img, out, 28, 28, 90);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) expect(out[y * 28 + x]).toBeCloseTo(img[x * 28 + (27 - y)]!, 5);
    }
  });

  it('resamples bilinearly: a small rotation moves ink but keeps most of it', () => {
    const out = new Float32Array(784);
    rotateBilinear(img, out, 28, 28, 20);
    expect(Array.from(out)).not.toEqual(Array.from(img));
    expect(Math.abs(sum(out) - sum(img)) / sum(img)).toBeLessThan(0.1);
    // Two rotations by ±20° return close to the original (interpolation blurs a little).
    const back = new Float32Array(784);
    rotateBilinear(out, back, 28, 28, -20);
    const err = back.reduce((s, v, j) => s + Math.abs(v - img[j]!), 0) / sum(img);
    expect(err).toBeLessThan(0.5);
  });

  it('thickens and thins strokes', () => {
    const thick = new Float32Array(784);
    const thin = new Float32Array(784);
    const same = new Float32Array(784);
    changeThickness(img, thick, 28, 28, 1);
    changeThickness(img, thin, 28, 28, -1);
    changeThickness(img, same, 28, 28, 0);
    expect(sum(thick)).toBeGreaterThan(sum(img) * 1.3);
    expect(sum(thin)).toBeLessThan(sum(img) * 0.7);
    expect(Array.from(same)).toEqual(Array.from(img));
  });
});

describe('shiftAgentFeatures', () => {
  const options = {
    seed: 9,
    rotationDegrees: { min: -45, max: 45 },
    noiseStd: { min: 0, max: 0.1 },
    thickness: [0, 0.5, -0.5, 1],
  };

  it('transforms each agent with its own shift, keeping shape, labels and [0, 1] range', () => {
    const { datasets, shifts } = shiftAgentFeatures(digits, partition, options);
    expect(datasets.length).toBe(4);
    expect(shifts.map((s) => s.thickness)).toEqual([0, 0.5, -0.5, 1]);
    expect(new Set(shifts.map((s) => s.rotationDegrees)).size).toBe(4);
    for (const s of shifts) {
      expect(Math.abs(s.rotationDegrees)).toBeLessThanOrEqual(45);
      expect(s.noiseStd >= 0 && s.noiseStd <= 0.1).toBe(true);
    }
    datasets.forEach((d, k) => {
      const list = partition.agents[k]!;
      expect(d.size).toBe(list.length);
      expect(d.featureShape).toEqual([1, 28, 28]);
      expect(d.name).toBe(`mnist/agent-${k}`);
      let changed = 0;
      for (let r = 0; r < d.size; r++) {
        expect(d.label(r)).toBe(digits.label(list[r]!));
        const x = d.features(r);
        expect(x.every((v) => v >= 0 && v <= 1)).toBe(true);
        if (x.some((v, j) => v !== digits.features(list[r]!)[j])) changed++;
      }
      expect(changed).toBe(d.size);
    });
  });

  it('is deterministic by seed, and the seed matters', () => {
    const a = shiftAgentFeatures(digits, partition, options).datasets[2]!;
    const b = shiftAgentFeatures(digits, partition, options).datasets[2]!;
    const c = shiftAgentFeatures(digits, partition, { ...options, seed: 10 }).datasets[2]!;
    expect(Array.from(b.features(5))).toEqual(Array.from(a.features(5)));
    expect(Array.from(c.features(5))).not.toEqual(Array.from(a.features(5)));
  });

  it('leaves images untouched for a zero shift, and draws each parameter from its own stream', () => {
    const { datasets } = shiftAgentFeatures(digits, partition, { seed: 1, rotationDegrees: [0, 0, 0, 10] });
    expect(Array.from(datasets[0]!.features(0))).toEqual(Array.from(digits.features(partition.agents[0]![0]!)));
    const rotOnly = drawAgentShifts(4, { seed: 3, rotationDegrees: { min: -30, max: 30 } });
    const withNoise = drawAgentShifts(4, {
      seed: 3,
      rotationDegrees: { min: -30, max: 30 },
      noiseStd: { min: 0, max: 1 },
    });
    expect(withNoise.map((s) => s.rotationDegrees)).toEqual(rotOnly.map((s) => s.rotationDegrees));
  });

  it('rejects bad parameters, naming them', () => {
    expect(() => shiftAgentFeatures(digits, partition, { seed: 1, thickness: [0, 2, 0, 0] })).toThrow(
      'featureShift: options.thickness[1] must be a number in [-1, 1], got 2',
    );
    expect(() => shiftAgentFeatures(digits, partition, { seed: 1, noiseStd: [0.1] })).toThrow(
      'featureShift: options.noiseStd lists 1 values, expected one per agent (4)',
    );
    expect(() => shiftAgentFeatures(digits, partition, { seed: 1, rotationDegrees: { min: 10, max: -10 } })).toThrow(
      'featureShift: options.rotationDegrees.min (10) exceeds max (-10)',
    );
    const flat = loadMnist({ perClass: 1 });
    expect(() => shiftAgentFeatures(flat, partition, { seed: 1 })).toThrow(
      'featureShift: partition is for 300 examples, dataset mnist has 10',
    );
  });
});
