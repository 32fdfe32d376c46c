/** Pools several datasets with the same example shape into one (e.g. every device's data for a centralised run). */
import { LocalDataset, type FeatureArray } from './dataset.js';

export function concatDatasets<F extends FeatureArray>(parts: readonly LocalDataset<F>[], name = 'pooled'): LocalDataset<F> {
  if (!Array.isArray(parts) || parts.length === 0) throw new TypeError('concatDatasets: parts must be a non-empty array of datasets');
  const first = parts[0]!;
  parts.forEach((part, k) => {
    if (part.dtype !== first.dtype || part.featureSize !== first.featureSize || part.featureShape.join() !== first.featureShape.join()) {
      throw new RangeError(
        `concatDatasets: parts[${k}] (${part.name}) has ${part.dtype} [${part.featureShape.join(', ')}], ` +
          `parts[0] has ${first.dtype} [${first.featureShape.join(', ')}]`,
      );
    }
  });
  const rows = parts.reduce((n, p) => n + p.size, 0);
  const features = (first.dtype === 'float32' ? new Float32Array(rows * first.featureSize) : new BigInt64Array(rows * first.featureSize)) as F;
  const labels = new Int32Array(rows);
  let row = 0;
  for (const part of parts) {
    for (let i = 0; i < part.size; i++, row++) {
      (features as Float32Array).set(part.features(i) as Float32Array, row * first.featureSize);
      labels[row] = part.label(i);
    }
  }
  return new LocalDataset<F>({
    features,
    labels,
    featureShape: first.featureShape,
    numClasses: Math.max(...parts.map((p) => p.numClasses)),
    name,
  });
}
