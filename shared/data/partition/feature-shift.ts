/**
 * Per-device feature shift for image data: each agent gets its own rotation, stroke-thickness change and
 * pixel-noise level, applied to all of its images. Labels stay as they are; what differs between agents is
 * p(x | y), the "different cameras / different handwriting" kind of non-IID that label partitions miss.
 */
import { seedToKey } from '../../noise/engine.js';
import { LocalDataset } from '../dataset.js';
import { describe, optionsObject, requireInt } from '../describe.js';
import { SeededRng, type Seed } from '../rng.js';
import { changeThickness, rotateBilinear } from './image-ops.js';
import type { Partition } from './partition.js';

/** A per-agent value: drawn uniformly from [min, max] per agent, or listed explicitly (one per agent). */
export type ShiftParameter = { min: number; max: number } | readonly number[];

export interface FeatureShiftOptions {
  seed: Seed;
  /** Rotation in degrees, counter-clockwise (e.g. { min: -30, max: 30 }). Default 0. */
  rotationDegrees?: ShiftParameter;
  /** Standard deviation of additive Gaussian pixel noise, >= 0 (e.g. { min: 0, max: 0.2 }). Default 0. */
  noiseStd?: ShiftParameter;
  /** Stroke thickness change in [−1, 1]: > 0 thicker (dilation), < 0 thinner (erosion). Default 0. */
  thickness?: ShiftParameter;
  /** [height, width]; default from featureShape ([..., H, W], or a square [H·W]). Single channel only. */
  imageShape?: readonly [number, number];
  /** Clamp range after the transforms (default [0, 1], MNIST's range); null to leave values unclamped. */
  clip?: readonly [number, number] | null;
}

export interface AgentShift {
  agent: number;
  rotationDegrees: number;
  noiseStd: number;
  thickness: number;
}

export interface ShiftedAgents {
  /** Agent k's examples (partition order), transformed, in a new dataset named "<name>/agent-k". */
  datasets: LocalDataset<Float32Array>[];
  shifts: AgentShift[];
}

const PARAMETERS = {
  rotationDegrees: { min: -360, max: 360 },
  noiseStd: { min: 0, max: 10 },
  thickness: { min: -1, max: 1 },
} as const;
type ParameterName = keyof typeof PARAMETERS;

function drawParameter(
  spec: ShiftParameter | undefined,
  name: ParameterName,
  agent: number,
  numAgents: number,
  seed: Seed,
): number {
  const bounds = PARAMETERS[name];
  const where = `featureShift: options.${name}`;
  const check = (v: unknown, label: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < bounds.min || v > bounds.max) {
      throw new RangeError(`${label} must be a number in [${bounds.min}, ${bounds.max}], got ${describe(v)}`);
    }
    return v;
  };
  if (spec === undefined) return 0;
  if (Array.isArray(spec)) {
    if (spec.length !== numAgents) {
      throw new RangeError(`${where} lists ${spec.length} values, expected one per agent (${numAgents})`);
    }
    return check(spec[agent], `${where}[${agent}]`);
  }
  if (spec === null || typeof spec !== 'object') {
    throw new TypeError(`${where} must be { min, max } or an array of one value per agent, got ${describe(spec)}`);
  }
  const { min, max } = spec as { min: unknown; max: unknown };
  const lo = check(min, `${where}.min`);
  const hi = check(max, `${where}.max`);
  if (lo > hi) throw new RangeError(`${where}.min (${lo}) exceeds max (${hi})`);
  // One stream per parameter and agent: adding a noise range does not change the rotations drawn.
  return new SeededRng(seed, 'feature-shift', name, agent).uniform(lo, hi);
}

/** The shift each of numAgents agents gets under `options`, without transforming anything. */
export function drawAgentShifts(numAgents: number, options: FeatureShiftOptions): AgentShift[] {
  const opts = optionsObject(options, 'featureShift: options');
  if (opts.seed === undefined) throw new TypeError('featureShift: options.seed is required');
  seedToKey(opts.seed, 'featureShift: options.seed');
  requireInt(numAgents, 'featureShift: numAgents', 0, 1 << 20);
  return Array.from({ length: numAgents }, (_, agent) => ({
    agent,
    rotationDegrees: drawParameter(opts.rotationDegrees, 'rotationDegrees', agent, numAgents, opts.seed!),
    noiseStd: drawParameter(opts.noiseStd, 'noiseStd', agent, numAgents, opts.seed!),
    thickness: drawParameter(opts.thickness, 'thickness', agent, numAgents, opts.seed!),
  }));
}

function imageShapeOf(dataset: LocalDataset, option: readonly [number, number] | undefined): [number, number] {
  if (option !== undefined) {
    const [h, w] = option;
    const valid =
      Array.isArray(option) && option.length === 2 && Number.isInteger(h) && Number.isInteger(w) && h! >= 1 && w! >= 1;
    if (!valid || h! * w! !== dataset.featureSize) {
      throw new RangeError(
        `featureShift: options.imageShape must be [height, width] with height × width = ${dataset.featureSize}, ` +
          `got ${describe(option)}`,
      );
    }
    return [h!, w!];
  }
  const shape = dataset.featureShape;
  if (shape.length >= 2 && shape.slice(0, -2).every((d) => d === 1)) {
    return [shape[shape.length - 2]!, shape[shape.length - 1]!];
  }
  const side = Math.round(Math.sqrt(dataset.featureSize));
  if (shape.length === 1 && side * side === dataset.featureSize) return [side, side];
  throw new RangeError(
    `featureShift: cannot infer an image shape from featureShape [${shape.join(', ')}]; pass options.imageShape`,
  );
}

/**
 * Agent k's examples (`positions` of `dataset`) transformed by its shift, as shiftAgentFeatures does for each
 * agent: a new dataset named "<name>/agent-k". Lets a caller materialise one agent's share on demand (a
 * simulation of thousands of agents keeps only the shares in use).
 */
export function shiftExamples(
  dataset: LocalDataset<Float32Array>,
  positions: ArrayLike<number>,
  shift: AgentShift,
  seed: Seed,
  [height, width]: readonly [number, number],
  clip: readonly [number, number] | null,
  k: number,
): LocalDataset<Float32Array> {
  const pixels = height * width;
  const a = new Float32Array(pixels);
  const b = new Float32Array(pixels);
  const noise = new SeededRng(seed, 'pixel-noise', k);
  const features = new Float32Array(positions.length * pixels);
  const labels = new Int32Array(positions.length);
  for (let r = 0; r < positions.length; r++) {
    const position = positions[r]!;
    a.set(dataset.features(position));
    if (shift.thickness !== 0) {
      changeThickness(a, b, height, width, shift.thickness);
      a.set(b);
    }
    if (shift.rotationDegrees !== 0) {
      rotateBilinear(a, b, height, width, shift.rotationDegrees);
      a.set(b);
    }
    const out = features.subarray(r * pixels, (r + 1) * pixels);
    for (let j = 0; j < pixels; j++) {
      let v = a[j]!;
      if (shift.noiseStd > 0) v += shift.noiseStd * noise.normal();
      if (clip !== null) v = Math.min(clip[1]!, Math.max(clip[0]!, v));
      out[j] = v;
    }
    labels[r] = dataset.label(position);
  }
  return new LocalDataset({
    features,
    labels,
    featureShape: dataset.featureShape,
    numClasses: dataset.numClasses,
    name: `${dataset.name}/agent-${k}`,
    ...(dataset.classNames === undefined ? {} : { classNames: dataset.classNames }),
  });
}

/**
 * Transforms each agent's images by its shift: thickness change, then rotation, then additive noise
 * (drawn per pixel from the stream (seed, 'pixel-noise', agent), in the agent's example order), then clipping.
 * The same seed and partition always give the same images.
 */
export function shiftAgentFeatures(
  dataset: LocalDataset<Float32Array>,
  partition: Partition,
  options: FeatureShiftOptions,
): ShiftedAgents {
  if (!(dataset instanceof LocalDataset) || dataset.dtype !== 'float32') {
    throw new TypeError(`featureShift: dataset must be a float32 LocalDataset, got ${describe(dataset)}`);
  }
  if (partition.datasetSize !== dataset.size) {
    throw new RangeError(
      `featureShift: partition is for ${partition.datasetSize} examples, dataset ${dataset.name} has ${dataset.size}`,
    );
  }
  const opts = optionsObject(options, 'featureShift: options');
  const [height, width] = imageShapeOf(dataset, opts.imageShape);
  const clip = opts.clip === undefined ? ([0, 1] as const) : opts.clip;
  if (clip !== null && (!Array.isArray(clip) || clip.length !== 2 || !(clip[0]! <= clip[1]!))) {
    throw new RangeError(
      `featureShift: options.clip must be [low, high] with low <= high, or null, got ${describe(clip)}`,
    );
  }
  const shifts = drawAgentShifts(partition.agents.length, options);
  const datasets = partition.agents.map((list, k) => shiftExamples(dataset, list, shifts[k]!, opts.seed!, [height, width], clip, k));
  return { datasets, shifts };
}
