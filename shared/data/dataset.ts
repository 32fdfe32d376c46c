/**
 * A classification dataset held on one device: a block of fixed-width feature rows (float32 values, or int64
 * token ids for a text model) plus one integer label per row. Views (subset) share the storage of their parent
 * through an index map, so a partition of a 10,000-row set into 100 agents copies no features.
 */
import { describe, optionsObject, requireInt } from './describe.js';
import { seedToKey } from '../noise/engine.js';
import { SeededRng, type Seed } from './rng.js';

export type FeatureDtype = 'float32' | 'int64';
export type FeatureArray = Float32Array | BigInt64Array;

export interface DatasetInit<F extends FeatureArray> {
  /** Row-major features, rows × product(featureShape) values. Ownership passes to the dataset. */
  features: F;
  /** One class index per row, each in [0, numClasses). */
  labels: Int32Array | readonly number[];
  /** Shape of one example, e.g. [784], [1, 28, 28] or [seqLength]. */
  featureShape: readonly number[];
  numClasses: number;
  /** Used in error messages and logs, e.g. 'mnist' or 'agent-3'. */
  name?: string;
  classNames?: readonly string[];
}

export interface BatchOptions {
  /** Seed of the epoch permutation; required unless shuffle is false. */
  seed?: Seed;
  /** Epoch number (default 0); each epoch draws its own permutation from (seed, epoch). */
  epoch?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Shuffle (default true); false yields rows in stored order. */
  shuffle?: boolean;
  /**
   * Reuse one set of buffers for every batch of the epoch (default true): each batch overwrites the arrays of
   * the previous one, which suits a loop that feeds each batch to a session before asking for the next.
   * Pass false to get fresh arrays per batch (e.g. to collect them).
   */
  reuseBuffers?: boolean;
}

export interface Batch<F extends FeatureArray> {
  /** size × product(featureShape) values, row-major. */
  features: F;
  /** size int64 labels, as the ONNX loss head takes them. */
  labels: BigInt64Array;
  /** Rows in this batch (batchSize except possibly the last). */
  size: number;
  /** [size, ...featureShape], ready for an ONNX tensor. */
  shape: number[];
  /** Dataset positions of the rows, in batch order. */
  indices: Uint32Array;
  /** Position of this batch within the epoch, from 0. */
  index: number;
}

const viewToken: unique symbol = Symbol('LocalDataset view');

interface ViewInit<F extends FeatureArray> {
  parent: LocalDataset<F>;
  /** Storage rows of the view's examples. */
  rows: Uint32Array;
  name: string;
}

function shapeSize(shape: readonly number[], name: string): number {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new TypeError(`${name} must be a non-empty array of positive integers, got ${describe(shape)}`);
  }
  let size = 1;
  shape.forEach((d, i) => {
    requireInt(d, `${name}[${i}]`, 1);
    size *= d;
  });
  return size;
}

export class LocalDataset<F extends FeatureArray = FeatureArray> {
  readonly name: string;
  readonly featureShape: readonly number[];
  /** Values per example: the product of featureShape. */
  readonly featureSize: number;
  readonly numClasses: number;
  readonly classNames: readonly string[] | undefined;
  /** Number of examples in this dataset (or view). */
  readonly size: number;
  private readonly storage: F;
  private readonly storedLabels: Int32Array;
  /** Storage row of each example of a view; null when the dataset is its storage, in order. */
  private readonly rows: Uint32Array | null;

  constructor(init: DatasetInit<F>);
  /** Views only: built by subset() from a parent's validated fields, so nothing is checked again. */
  constructor(init: ViewInit<F>, token: typeof viewToken);
  constructor(init: DatasetInit<F> | ViewInit<F>, token?: typeof viewToken) {
    if (token === viewToken) {
      const view = init as ViewInit<F>;
      const parent = view.parent;
      this.name = view.name;
      this.featureShape = parent.featureShape;
      this.featureSize = parent.featureSize;
      this.numClasses = parent.numClasses;
      this.classNames = parent.classNames;
      this.storage = parent.storage;
      this.storedLabels = parent.storedLabels;
      this.rows = view.rows;
      this.size = view.rows.length;
      return;
    }
    const checked = optionsObject(init as DatasetInit<F>, 'dataset') as DatasetInit<F>;
    const { features, labels, featureShape, numClasses, classNames } = checked;
    const name = checked.name ?? 'dataset';
    if (typeof name !== 'string') throw new TypeError(`dataset: name must be a string, got ${describe(name)}`);
    if (!(features instanceof Float32Array) && !(features instanceof BigInt64Array)) {
      throw new TypeError(`${name}: features must be a Float32Array or BigInt64Array, got ${describe(features)}`);
    }
    const featureSize = shapeSize(featureShape, `${name}: featureShape`);
    requireInt(numClasses, `${name}: numClasses`, 1, 2 ** 31 - 1);
    if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
      throw new TypeError(`${name}: labels must be an Int32Array or an array of integers, got ${describe(labels)}`);
    }
    const rows = labels.length;
    if (features.length !== rows * featureSize) {
      throw new RangeError(
        `${name}: features has ${features.length} values, ` +
          `expected ${rows} rows × ${featureSize} = ${rows * featureSize}`,
      );
    }
    const stored = labels instanceof Int32Array ? labels : new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      const y = labels[i];
      if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y >= numClasses) {
        throw new RangeError(`${name} row ${i}: label ${describe(y)} is not an integer in [0, ${numClasses})`);
      }
      stored[i] = y;
    }
    if (classNames !== undefined && (!Array.isArray(classNames) || classNames.length !== numClasses)) {
      throw new RangeError(`${name}: classNames must be an array of numClasses (${numClasses}) names`);
    }
    this.name = name;
    this.featureShape = Object.freeze([...featureShape]);
    this.featureSize = featureSize;
    this.numClasses = numClasses;
    this.classNames = classNames === undefined ? undefined : Object.freeze([...classNames]);
    this.storage = features;
    this.storedLabels = stored;
    this.rows = null;
    this.size = rows;
  }

  /** 'float32' for dense feature rows, 'int64' for token-id sequences. */
  get dtype(): FeatureDtype {
    return this.storage instanceof Float32Array ? 'float32' : 'int64';
  }

  /** This dataset typed as float32 rows; throws (naming it) when it holds token ids. */
  asFloat32(): LocalDataset<Float32Array> {
    if (this.dtype !== 'float32') {
      throw new TypeError(`${this.name}: expected float32 features, the dataset holds int64 token ids`);
    }
    return this as unknown as LocalDataset<Float32Array>;
  }

  /** This dataset typed as int64 token-id rows; throws (naming it) when it holds float32 features. */
  asInt64(): LocalDataset<BigInt64Array> {
    if (this.dtype !== 'int64') {
      throw new TypeError(`${this.name}: expected int64 token ids, the dataset holds float32 features`);
    }
    return this as unknown as LocalDataset<BigInt64Array>;
  }

  private storageRow(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new RangeError(`${this.name}: example index must be an integer in [0, ${this.size}), got ${describe(i)}`);
    }
    return this.rows === null ? i : this.rows[i]!;
  }

  /** Label of example i. */
  label(i: number): number {
    return this.storedLabels[this.storageRow(i)]!;
  }

  /** Features of example i, as a view into shared storage: read it, do not write it. */
  features(i: number): F {
    const r = this.storageRow(i);
    return this.storage.subarray(r * this.featureSize, (r + 1) * this.featureSize) as F;
  }

  /** All labels of this dataset (a copy). */
  labels(): Int32Array {
    if (this.rows === null) return this.storedLabels.slice();
    const out = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.storedLabels[this.rows[i]!]!;
    return out;
  }

  /** Examples per class. */
  classCounts(): number[] {
    const counts = new Array<number>(this.numClasses).fill(0);
    for (let i = 0; i < this.size; i++) {
      const y = this.storedLabels[this.rows === null ? i : this.rows[i]!]!;
      counts[y]! += 1;
    }
    return counts;
  }

  /**
   * A view of the examples at `indices` (positions in this dataset, in the given order; repeats allowed).
   * Shares storage with this dataset.
   */
  subset(indices: ArrayLike<number>, name = `${this.name}[subset]`): LocalDataset<F> {
    if (indices === null || typeof indices !== 'object' || typeof indices.length !== 'number') {
      throw new TypeError(`subset: indices must be an array of integers, got ${describe(indices)}`);
    }
    const rows = new Uint32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= this.size) {
        throw new RangeError(`subset: indices[${k}] must be an integer in [0, ${this.size}), got ${describe(i)}`);
      }
      rows[k] = this.rows === null ? i : this.rows[i]!;
    }
    return new LocalDataset<F>({ parent: this, rows, name }, viewToken);
  }

  /** A copy with its own contiguous storage (drops the link to a parent's arrays). */
  materialize(name = this.name): LocalDataset<F> {
    const features = (this.dtype === 'float32'
      ? new Float32Array(this.size * this.featureSize)
      : new BigInt64Array(this.size * this.featureSize)) as F;
    for (let i = 0; i < this.size; i++) features.set(this.features(i) as never, i * this.featureSize);
    return new LocalDataset<F>({
      features,
      labels: this.labels(),
      featureShape: this.featureShape,
      numClasses: this.numClasses,
      name,
      ...(this.classNames === undefined ? {} : { classNames: this.classNames }),
    });
  }

  /** The epoch order: a permutation of 0..size-1 drawn from the stream (seed, 'shuffle', epoch). */
  epochOrder(seed: Seed, epoch = 0): Uint32Array {
    requireInt(epoch, `${this.name}: epoch`, 0);
    return new SeededRng(seed, 'shuffle', epoch).permutation(this.size);
  }

  /** Number of batches one epoch yields. */
  batchCount(batchSize: number, dropLast = false): number {
    requireInt(batchSize, `${this.name}: batchSize`, 1);
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /**
   * Batches of one epoch, in the order of epochOrder(seed, epoch) (or stored order when shuffle is false).
   * Arguments are checked here, before the first batch is asked for.
   */
  batches(batchSize: number, options?: BatchOptions): IterableIterator<Batch<F>> {
    const opts = optionsObject(options, `${this.name}: batches options`);
    requireInt(batchSize, `${this.name}: batchSize`, 1);
    const shuffle = opts.shuffle ?? true;
    const epoch = requireInt(opts.epoch ?? 0, `${this.name}: options.epoch`, 0);
    if (shuffle && opts.seed === undefined) {
      throw new TypeError(
        `${this.name}: options.seed is required when shuffling (pass shuffle: false for stored order)`,
      );
    }
    if (shuffle) seedToKey(opts.seed!, `${this.name}: options.seed`);
    const order = shuffle ? this.epochOrder(opts.seed!, epoch) : null;
    return this.iterateBatches(batchSize, order, opts.dropLast ?? false, opts.reuseBuffers ?? true);
  }

  private *iterateBatches(
    batchSize: number,
    order: Uint32Array | null,
    dropLast: boolean,
    reuse: boolean,
  ): Generator<Batch<F>, void, undefined> {
    const width = this.featureSize;
    const count = this.batchCount(batchSize, dropLast);
    const makeFeatures = (n: number): F =>
      (this.storage instanceof Float32Array ? new Float32Array(n * width) : new BigInt64Array(n * width)) as F;
    const capacity = Math.min(batchSize, this.size);
    let features = makeFeatures(capacity);
    let labels = new BigInt64Array(capacity);
    let indices = new Uint32Array(capacity);
    for (let b = 0; b < count; b++) {
      const start = b * batchSize;
      const size = Math.min(batchSize, this.size - start);
      if (!reuse && b > 0) {
        features = makeFeatures(size);
        labels = new BigInt64Array(size);
        indices = new Uint32Array(size);
      }
      for (let k = 0; k < size; k++) {
        const position = order === null ? start + k : order[start + k]!;
        const row = this.rows === null ? position : this.rows[position]!;
        features.set(this.storage.subarray(row * width, (row + 1) * width) as never, k * width);
        labels[k] = BigInt(this.storedLabels[row]!);
        indices[k] = position;
      }
      const full = size === features.length / width;
      yield {
        features: full ? features : (features.subarray(0, size * width) as F),
        labels: full ? labels : labels.subarray(0, size),
        size,
        shape: [size, ...this.featureShape],
        indices: full ? indices : indices.subarray(0, size),
        index: b,
      };
    }
  }
}
