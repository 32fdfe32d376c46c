/** A seeded train/test split, so that every device (and the coordinator) holds out the same examples. */
import { seedToKey } from '../noise/engine.js';
import type { FeatureArray, LocalDataset } from './dataset.js';
import { describe, optionsObject } from './describe.js';
import { SeededRng, type Seed } from './rng.js';

export interface SplitOptions {
  /** Fraction of examples held out for test, in (0, 1). */
  testFraction: number;
  seed: Seed;
  /** Hold out round(fraction × class size) of every class (default true), so both sides keep the class mix. */
  stratify?: boolean;
}

export interface Split<F extends FeatureArray> {
  train: LocalDataset<F>;
  test: LocalDataset<F>;
}

/** Splits into two disjoint views covering the dataset, each in ascending position order. */
export function trainTestSplit<F extends FeatureArray>(dataset: LocalDataset<F>, options: SplitOptions): Split<F> {
  const opts = optionsObject(options, 'trainTestSplit: options');
  const fraction = opts.testFraction;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) {
    throw new RangeError(`trainTestSplit: options.testFraction must be a number in (0, 1), got ${describe(fraction)}`);
  }
  if (opts.seed === undefined) throw new TypeError('trainTestSplit: options.seed is required');
  seedToKey(opts.seed, 'trainTestSplit: options.seed');
  const rng = new SeededRng(opts.seed, 'train-test-split');
  const isTest = new Uint8Array(dataset.size);
  const groups: number[][] = [];
  if (opts.stratify ?? true) {
    const byClass: number[][] = Array.from({ length: dataset.numClasses }, () => []);
    for (let i = 0; i < dataset.size; i++) byClass[dataset.label(i)]!.push(i);
    groups.push(...byClass);
  } else {
    groups.push(Array.from({ length: dataset.size }, (_, i) => i));
  }
  for (const group of groups) {
    rng.shuffle(group);
    const take = Math.round(group.length * fraction);
    for (let j = 0; j < take; j++) isTest[group[j]!] = 1;
  }
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < dataset.size; i++) (isTest[i] === 1 ? test : train).push(i);
  return { train: dataset.subset(train, `${dataset.name}/train`), test: dataset.subset(test, `${dataset.name}/test`) };
}
