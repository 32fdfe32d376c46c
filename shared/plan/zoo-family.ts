/**
 * Zoo families the planner can size: a model builder with one size parameter, e.g. the MLP's hidden width, the
 * CNN's channels or the transformer's width or depth. A family member is built as a skeleton — the zoo's own graph, with its
 * weights declared by shape but never drawn or stored — so a billion-parameter candidate costs no memory to plan.
 */
import { LOSS_KINDS, type LossKind } from '../model/loss-head.js';
import { DataType } from '../model/onnx-types.js';
import { buildCnn, buildMlp, buildTransformer } from '../model/zoo/index.js';
import type { ZooModel } from '../model/zoo/index.js';
import { planGraphFromModel, type PlanGraph } from './plan-graph.js';
import { PlanError } from './plan-error.js';

export interface ZooFamily {
  name: string;
  /** Size parameters, the first being the default. */
  params: readonly string[];
  /** Smallest and largest value the search tries for a parameter. */
  range(param: string): { min: number; max: number };
  /** The member planned when no size is given (the zoo builder's default). */
  defaultSize(param: string): number;
  /** Human description of a member, e.g. "mlp 784-1024-1024-10". */
  describe(param: string, size: number): string;
  /** Builds the member; with shapesOnly its weights carry dims and no data. */
  build(param: string, size: number, shapesOnly?: boolean): ZooModel;
}

/** MLP on 784 features, 10 classes: `width` of two hidden layers (default 1024), or `layers` hidden layers of 1024. */
export const MLP_FAMILY: ZooFamily = {
  name: 'mlp',
  params: ['width', 'layers'],
  range: (param) => (param === 'width' ? { min: 1, max: 1 << 20 } : { min: 1, max: 4096 }),
  defaultSize: (param) => (param === 'width' ? 1024 : 2),
  describe: (param, size) => `mlp ${mlpSizes(param, size).join('-')}`,
  build: (param, size, shapesOnly) => buildMlp({ sizes: mlpSizes(param, size), shapesOnly: shapesOnly ?? false }),
};

function mlpSizes(param: string, size: number): number[] {
  if (param === 'width') return [784, size, size, 10];
  return [784, ...new Array<number>(size).fill(1024), 10];
}

/** The zoo transformer (vocab 1000, 4 heads, seq 32, 2 classes): `dim` (a multiple of 8; 2 layers) or `layers` (dim 256). */
export const TRANSFORMER_FAMILY: ZooFamily = {
  name: 'transformer',
  params: ['dim', 'layers'],
  range: (param) => (param === 'dim' ? { min: 8, max: 1 << 16 } : { min: 1, max: 64 }),
  defaultSize: (param) => (param === 'dim' ? 256 : 2),
  describe: (param, size) => {
    const o = transformerOptions(param, size);
    return `transformer v${o.vocab} d${o.dim} h${o.heads} l${o.layers} s${o.seq}`;
  },
  build: (param, size, shapesOnly) => buildTransformer({ ...transformerOptions(param, size), shapesOnly: shapesOnly ?? false }),
};

function transformerOptions(param: string, size: number): { vocab: number; dim: number; heads: number; layers: number; seq: number; classes: number } {
  const base = { vocab: 1000, dim: 256, heads: 4, layers: 2, seq: 32, classes: 2 };
  if (param === 'dim') {
    if (size % 8 !== 0) throw new PlanError(`transformer dim must be a multiple of 8, got ${size}`);
    return { ...base, dim: size };
  }
  return { ...base, layers: size };
}

/**
 * The zoo CNN on 1×28×28 images, 10 classes (two 3×3 conv + 2×2 max-pool stages, then two fully connected
 * layers): `channels` c of the stages (c and 2c; default 8, i.e. 8 and 16; hidden 64) or `hidden` width of the
 * first fully connected layer (channels 8 and 16).
 */
export const CNN_FAMILY: ZooFamily = {
  name: 'cnn',
  params: ['channels', 'hidden'],
  // buildCnn takes up to 4096 channels per stage, and the second stage has twice the first's.
  range: (param) => (param === 'channels' ? { min: 1, max: 2048 } : { min: 1, max: 1 << 20 }),
  defaultSize: (param) => (param === 'channels' ? 8 : 64),
  describe: (param, size) => {
    const o = cnnOptions(param, size);
    return `cnn 1x28x28 c${o.channels.join(',')} h${o.hidden} -> ${o.classes}`;
  },
  build: (param, size, shapesOnly) => buildCnn({ ...cnnOptions(param, size), shapesOnly: shapesOnly ?? false }),
};

function cnnOptions(param: string, size: number): { channels: [number, number]; hidden: number; classes: number } {
  if (param === 'channels') return { channels: [size, 2 * size], hidden: 64, classes: 10 };
  return { channels: [8, 16], hidden: size, classes: 10 };
}

export const ZOO_FAMILIES: Readonly<Record<string, ZooFamily>> = { mlp: MLP_FAMILY, cnn: CNN_FAMILY, transformer: TRANSFORMER_FAMILY };

export function zooFamily(name: string): ZooFamily {
  const family = ZOO_FAMILIES[name];
  if (family === undefined) throw new PlanError(`unknown zoo family ${JSON.stringify(name)}; known: ${Object.keys(ZOO_FAMILIES).join(', ')}`);
  return family;
}

export function checkFamilyParam(family: ZooFamily, param: string | undefined): string {
  const chosen = param ?? family.params[0]!;
  if (!family.params.includes(chosen)) {
    throw new PlanError(`zoo:${family.name} has no size parameter ${JSON.stringify(chosen)}; use one of ${family.params.join(', ')}`);
  }
  return chosen;
}

/** The plan graph of one family member (loss head included), built as a skeleton. */
export function familyGraph(family: ZooFamily, param: string, size: number, loss: LossKind = 'cross-entropy'): PlanGraph {
  if (!LOSS_KINDS.includes(loss)) throw new PlanError(`loss must be one of ${LOSS_KINDS.join(', ')}`);
  const { min, max } = family.range(param);
  if (!Number.isInteger(size) || size < min || size > max) throw new PlanError(`${family.name} ${param} must be an integer in [${min}, ${max}], got ${size}`);
  return planGraphFromModel(family.build(param, size, true).bytes, { source: family.describe(param, size), loss });
}
