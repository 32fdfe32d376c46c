/**
 * The default task and its pretrained base model (docs/default-model.md).
 *
 * Task: MNIST digits, pretrained centrally on clean images, then adapted on devices whose cameras distort
 * what they see (each device its own rotation, stroke thickening and sensor noise, drawn from one family).
 * The 10,000 digits of the `mnist` package are split once, by a fixed seed, into three disjoint parts:
 *
 *   test        1,500 digits  held out from everything; evaluated clean and distorted
 *   pretrain    4,000 digits  clean; the base model in models/default-digits was trained on these only
 *   device pool 4,500 digits  shared out among the agents, each agent's share distorted by its own shift
 *
 * The split is part of the model's definition (the pretraining set must never reach the test set), so its seed
 * is a constant; a job's seed only chooses how the device pool is shared out and which shift each agent gets.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalDataset } from '../data/dataset.js';
import { optionsObject, requireInt, requirePositive } from '../data/describe.js';
import { loadMnist, MNIST_PIXELS, MNIST_SIDE } from '../data/builtin/mnist.js';
import { shiftAgentFeatures, type AgentShift, type FeatureShiftOptions } from '../data/partition/feature-shift.js';
import { partitionDirichlet } from '../data/partition/dirichlet.js';
import { partitionIid } from '../data/partition/iid.js';
import type { Partition } from '../data/partition/partition.js';
import { SeededRng, type Seed } from '../data/rng.js';
import { ModelPreparationError } from './errors.js';
import { loadPrepared, MANIFEST_FILE } from './prepared-store.js';
import type { PreparedModel } from './prepare-model.js';

/** Layer widths of the base model (the zoo MLP, Gemm layers): 109,386 parameters. */
export const DEFAULT_MODEL_SIZES: readonly number[] = Object.freeze([784, 128, 64, 10]);

/** How the 10,000 digits are split: one permutation from (seed, 'default-digits', 'split'), cut in this order. */
export const DEFAULT_SPLIT = Object.freeze({ seed: 20_250_101, test: 1500, pretrain: 4000, devicePool: 4500 });

/** A closed range a per-device parameter is drawn from, uniformly. */
export interface ParameterRange {
  readonly min: number;
  readonly max: number;
}

/** The distortion family every device (and the shifted test set) draws its shift from. */
export interface DistortionFamily {
  /** Counter-clockwise rotation in degrees (all devices tilt the same way, by different amounts). */
  readonly rotationDegrees: ParameterRange;
  /** Stroke thickening in [0, 1] (a blend towards a grey dilation; 1 = one full pixel step). */
  readonly thickness: ParameterRange;
  /** Standard deviation of additive Gaussian pixel noise, before clipping to [0, 1]. */
  readonly noiseStd: ParameterRange;
}

export const DEFAULT_DISTORTION: DistortionFamily = Object.freeze({
  rotationDegrees: Object.freeze({ min: 15, max: 30 }),
  thickness: Object.freeze({ min: 0.25, max: 0.75 }),
  noiseStd: Object.freeze({ min: 0.05, max: 0.15 }),
});

/** The shifted test set: the test digits in this many IID groups, each distorted by a shift drawn with this seed. */
export const SHIFTED_TEST = Object.freeze({ seed: 4242, groups: 10 });

/** The folder of the committed model, relative to this module in the source tree and in the compiled one. */
const MODEL_DIR_CANDIDATES = ['../../models/default-digits', '../../../models/default-digits'];

/** The directory of the committed default model (model.onnx, base.slab, manifest.json). */
export function defaultModelDir(): string {
  for (const rel of MODEL_DIR_CANDIDATES) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, MANIFEST_FILE))) return dir;
  }
  throw new ModelPreparationError(
    `the default model was not found (looked for ${MODEL_DIR_CANDIDATES.join(', ')} next to ${import.meta.url}); ` +
      'it is committed in models/default-digits, or rebuilt by scripts/pretrain-default (docs/default-model.md)',
  );
}

/** The pretrained default model, loaded and verified (manifest schema, slab size and sha256). */
export async function loadDefaultModel(dir: string = defaultModelDir()): Promise<PreparedModel> {
  return loadPrepared(dir);
}

export interface DefaultSplit {
  /** Clean digits the base model was pretrained on. */
  pretrain: LocalDataset<Float32Array>;
  /** Clean digits the agents' data is drawn from (before distortion). */
  devicePool: LocalDataset<Float32Array>;
  /** Clean held-out digits. */
  test: LocalDataset<Float32Array>;
  /** Positions of each part in loadMnist() order (ascending, disjoint, together 0 … 9,999). */
  positions: { pretrain: Uint32Array; devicePool: Uint32Array; test: Uint32Array };
}

/**
 * The fixed three-way split of the MNIST digits (flat [784] features). Each part is a view of one fresh load,
 * in ascending position order; the three are disjoint and cover all 10,000 digits.
 */
export function defaultSplit(): DefaultSplit {
  const digits = loadMnist({ shape: 'flat' });
  const { seed, test, pretrain, devicePool } = DEFAULT_SPLIT;
  if (digits.size !== test + pretrain + devicePool) {
    throw new RangeError(`default task: expected ${test + pretrain + devicePool} MNIST digits, the package has ${digits.size}`);
  }
  const order = new SeededRng(seed, 'default-digits', 'split').permutation(digits.size);
  const positions = {
    test: order.slice(0, test).sort(),
    pretrain: order.slice(test, test + pretrain).sort(),
    devicePool: order.slice(test + pretrain).sort(),
  };
  return {
    test: digits.subset(positions.test, 'default-digits/test'),
    pretrain: digits.subset(positions.pretrain, 'default-digits/pretrain'),
    devicePool: digits.subset(positions.devicePool, 'default-digits/device-pool'),
    positions,
  };
}

/** The device distortion family as feature-shift options, drawn from `seed` (the default task's shifts). */
export function deviceShiftOptions(seed: Seed): FeatureShiftOptions {
  const { rotationDegrees, thickness, noiseStd } = DEFAULT_DISTORTION;
  return {
    seed,
    rotationDegrees: { ...rotationDegrees },
    thickness: { ...thickness },
    noiseStd: { ...noiseStd },
    imageShape: [MNIST_SIDE, MNIST_SIDE],
  };
}

/**
 * The held-out test digits, distorted: split into SHIFTED_TEST.groups IID groups, each transformed by its own
 * shift from the device family (seed SHIFTED_TEST.seed), then put back in the clean test set's order, so row i
 * is the distorted version of clean row i. Returns the dataset and the shift of each row's group.
 */
export function shiftedTestSet(test: LocalDataset<Float32Array> = defaultSplit().test): {
  dataset: LocalDataset<Float32Array>;
  shifts: AgentShift[];
  /** Group of each row. */
  groupOf: Uint8Array;
} {
  const partition = partitionIid(test, { numAgents: SHIFTED_TEST.groups, seed: SHIFTED_TEST.seed });
  const { datasets, shifts } = shiftAgentFeatures(test, partition, deviceShiftOptions(SHIFTED_TEST.seed));
  const features = new Float32Array(test.size * MNIST_PIXELS);
  const labels = new Int32Array(test.size);
  const groupOf = new Uint8Array(test.size);
  partition.agents.forEach((positions, k) => {
    const group = datasets[k]!;
    positions.forEach((position, r) => {
      features.set(group.features(r), position * MNIST_PIXELS);
      labels[position] = group.label(r);
      groupOf[position] = k;
    });
  });
  const dataset = new LocalDataset({
    features,
    labels,
    featureShape: test.featureShape,
    numClasses: test.numClasses,
    name: 'default-digits/test-shifted',
    ...(test.classNames === undefined ? {} : { classNames: test.classNames }),
  });
  return { dataset, shifts, groupOf };
}

export interface DefaultTaskOptions {
  /** Number of agents sharing the device pool (1 … 4,500). */
  numAgents: number;
  /** Seed of the partition and of each agent's shift (pixel noise included). */
  seed: Seed;
  /** IID only: exactly this many digits per agent (the rest of the pool unused). Default: the whole pool. */
  perAgent?: number;
  /** Label skew on top of the feature shift: Dirichlet α (by class) over the agents. Default: none (IID). */
  labelSkew?: number;
}

export interface DistortionDescription {
  family: DistortionFamily;
  /** The order the transforms are applied in (shared/data/partition/feature-shift.ts). */
  order: string;
  /** One line for logs and reports. */
  summary: string;
}

export interface DefaultTask {
  /** Agent k's training digits ("default-digits/device-pool/agent-k"), distorted by shifts[k]. */
  agents: LocalDataset<Float32Array>[];
  shifts: AgentShift[];
  partition: Partition;
  /** Held-out digits as the base model was trained to see them (source domain). */
  cleanTest: LocalDataset<Float32Array>;
  /** The same digits distorted by the device family (target domain); row i matches cleanTest row i. */
  shiftedTest: LocalDataset<Float32Array>;
  /** The shift applied to each of the SHIFTED_TEST.groups groups of the shifted test set. */
  shiftedTestShifts: AgentShift[];
  /** The group (index into shiftedTestShifts) of each shifted test row. */
  shiftedTestGroup: Uint8Array;
  distortion: DistortionDescription;
}

const range = (r: ParameterRange, unit = ''): string => `${r.min}${unit}…${r.max}${unit}`;

/** What the devices' distortion is, for logs and reports. */
export function describeDistortion(): DistortionDescription {
  const f = DEFAULT_DISTORTION;
  return {
    family: f,
    order: 'thickness, then rotation, then Gaussian noise, then clip to [0, 1]',
    summary:
      `per-device camera distortion: rotation ${range(f.rotationDegrees, '°')} counter-clockwise, ` +
      `stroke thickening ${range(f.thickness)}, pixel noise σ ${range(f.noiseStd)} (each drawn once per device)`,
  };
}

/**
 * The datasets the default job needs, deterministic from options.seed: each agent's distorted share of the
 * device pool, the clean and the shifted test sets (fixed, independent of the seed), and the distortion.
 */
export function defaultTask(options: DefaultTaskOptions): DefaultTask {
  const opts = optionsObject(options, 'defaultTask: options');
  const numAgents = requireInt(opts.numAgents, 'defaultTask: options.numAgents', 1, DEFAULT_SPLIT.devicePool);
  if (opts.seed === undefined) throw new TypeError('defaultTask: options.seed is required');
  if (opts.perAgent !== undefined && opts.labelSkew !== undefined) {
    throw new TypeError('defaultTask: options.perAgent applies to the IID split only; it cannot be combined with labelSkew');
  }
  const split = defaultSplit();
  let partition: Partition;
  if (opts.labelSkew !== undefined) {
    const alpha = requirePositive(opts.labelSkew, 'defaultTask: options.labelSkew');
    partition = partitionDirichlet(split.devicePool, { numAgents, seed: opts.seed, alpha });
  } else {
    if (opts.perAgent !== undefined) {
      requireInt(opts.perAgent, 'defaultTask: options.perAgent', 1, Math.floor(DEFAULT_SPLIT.devicePool / numAgents));
    }
    partition = partitionIid(split.devicePool, {
      numAgents,
      seed: opts.seed,
      ...(opts.perAgent === undefined ? {} : { perAgent: opts.perAgent }),
    });
  }
  const { datasets, shifts } = shiftAgentFeatures(split.devicePool, partition, deviceShiftOptions(opts.seed));
  const shifted = shiftedTestSet(split.test);
  return {
    agents: datasets,
    shifts,
    partition,
    cleanTest: split.test,
    shiftedTest: shifted.dataset,
    shiftedTestShifts: shifted.shifts,
    shiftedTestGroup: shifted.groupOf,
    distortion: describeDistortion(),
  };
}
