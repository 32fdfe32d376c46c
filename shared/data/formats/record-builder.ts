/**
 * Collects validated records from a text format (JSONL, CSV) into the flat arrays of a LocalDataset. Rows
 * arrive one at a time from a stream, so storage grows by doubling instead of knowing the row count upfront.
 */
import { LocalDataset, type FeatureArray, type FeatureDtype } from '../dataset.js';
import { describe, requireInt } from '../describe.js';

export interface RecordFormatOptions {
  /** 'float32' (default) for dense features, 'int64' for token-id sequences. */
  dtype?: FeatureDtype;
  /** Shape of one example; default [width of the first record]. Required to accept an empty file. */
  featureShape?: readonly number[];
  /** Number of classes; default (largest label seen) + 1. Pass it: a device may hold only some classes. */
  numClasses?: number;
  classNames?: readonly string[];
  /** Name used in error messages; default the file's base name. */
  name?: string;
}

const FLOAT32_MAX = 3.4028234663852886e38;

export class RecordBuilder {
  private readonly source: string;
  private readonly dtype: FeatureDtype;
  private readonly numClasses: number | undefined;
  private readonly options: RecordFormatOptions;
  private width: number | undefined;
  private floats = new Float32Array(0);
  private ints = new BigInt64Array(0);
  private labels = new Int32Array(64);
  private rows = 0;
  private maxLabel = -1;

  /** source: the name errors start with, e.g. "data.jsonl". */
  constructor(source: string, options: RecordFormatOptions) {
    this.source = source;
    this.options = options;
    const dtype = options.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'int64') {
      throw new TypeError(`${source}: options.dtype must be 'float32' or 'int64', got ${describe(dtype)}`);
    }
    this.dtype = dtype;
    if (options.numClasses !== undefined) {
      requireInt(options.numClasses, `${source}: options.numClasses`, 1, 2 ** 31 - 1);
    }
    this.numClasses = options.numClasses;
    if (options.featureShape !== undefined) {
      if (!Array.isArray(options.featureShape) || options.featureShape.length === 0) {
        throw new TypeError(`${source}: options.featureShape must be a non-empty array of positive integers`);
      }
      this.width = options.featureShape.reduce(
        (a, d, i) => a * requireInt(d, `${source}: options.featureShape[${i}]`, 1),
        1,
      );
    }
  }

  /**
   * Validates and appends one record. `where` locates it ("line 17"), `field`/`labelField` name its parts as
   * the file does ("x", "column label"). `fieldOf(j)` names feature j for value errors ("x[3]", "column px3").
   */
  add(
    values: ArrayLike<unknown>,
    label: unknown,
    where: string,
    field: string,
    labelField: string,
    fieldOf: (j: number) => string,
  ): void {
    const at = `${this.source} ${where}`;
    if (this.width === undefined) {
      if (values.length === 0) throw new RangeError(`${at}: ${field} is empty; a record needs at least one value`);
      this.width = values.length;
    }
    const width = this.width;
    if (values.length !== width) {
      throw new RangeError(`${at}: ${field} has ${values.length} values, expected ${width}`);
    }
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label > 2 ** 31 - 2) {
      throw new RangeError(`${at}: ${labelField} is ${describe(label)}, expected a non-negative integer class index`);
    }
    if (this.numClasses !== undefined && label >= this.numClasses) {
      throw new RangeError(`${at}: ${labelField} is ${label}, expected an integer in [0, ${this.numClasses})`);
    }
    const base = this.rows * width;
    if (this.dtype === 'float32') {
      if (this.floats.length < base + width) this.floats = grow(this.floats, base + width);
      for (let j = 0; j < width; j++) {
        const v = values[j];
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new RangeError(`${at}: ${fieldOf(j)} is ${describe(v)}, expected a finite number`);
        }
        if (Math.abs(v) > FLOAT32_MAX) {
          throw new RangeError(`${at}: ${fieldOf(j)} is ${v}, outside the float32 range`);
        }
        this.floats[base + j] = v;
      }
    } else {
      if (this.ints.length < base + width) this.ints = grow(this.ints, base + width);
      for (let j = 0; j < width; j++) {
        const v = values[j];
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
          throw new RangeError(`${at}: ${fieldOf(j)} is ${describe(v)}, expected a non-negative integer token id`);
        }
        this.ints[base + j] = BigInt(v);
      }
    }
    if (this.labels.length <= this.rows) this.labels = grow(this.labels, this.rows + 1);
    this.labels[this.rows] = label;
    if (label > this.maxLabel) this.maxLabel = label;
    this.rows++;
  }

  get count(): number {
    return this.rows;
  }

  finish(): LocalDataset<FeatureArray> {
    if (this.width === undefined) {
      throw new RangeError(`${this.source}: no records (pass options.featureShape to accept an empty file)`);
    }
    const n = this.rows * this.width;
    const features = this.dtype === 'float32' ? this.floats.slice(0, n) : this.ints.slice(0, n);
    return new LocalDataset<FeatureArray>({
      features,
      labels: this.labels.slice(0, this.rows),
      featureShape: this.options.featureShape ?? [this.width],
      numClasses: this.numClasses ?? Math.max(1, this.maxLabel + 1),
      name: this.options.name ?? this.source,
      ...(this.options.classNames === undefined ? {} : { classNames: this.options.classNames }),
    });
  }
}

/** A larger copy of `array` (capacity doubles, at least `needed`), keeping its contents. */
function grow<T extends Float32Array | BigInt64Array | Int32Array>(array: T, needed: number): T {
  const capacity = Math.max(needed, array.length * 2, 1024);
  const Ctor = array.constructor as new (n: number) => T;
  const next = new Ctor(capacity);
  next.set(array as never);
  return next;
}
