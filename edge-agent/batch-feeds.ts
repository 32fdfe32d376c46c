/**
 * Turns a dataset batch into onnxruntime feeds for a prepared model: the data input shaped as the manifest
 * declares it (the batch dimension set to the batch size), plus the int64 labels of the loss head.
 */
import * as ort from 'onnxruntime-node';
import type { Batch, FeatureArray } from '../shared/data/index.js';
import type { Feeds, Manifest } from '../shared/model/index.js';

/** What a loss evaluation needs of a batch (a dataset Batch qualifies; so does one sent to a worker). */
export type BatchData = Pick<Batch<FeatureArray>, 'features' | 'labels' | 'size' | 'shape'>;

export class BatchShapeError extends Error {
  override name = 'BatchShapeError';
}

/** The data input's shape for `size` rows: fixed dims as declared, the one free dim (the batch) set to size. */
function inputShape(manifest: Manifest, batch: BatchData): number[] {
  const input = manifest.dataInputs[0]!;
  const declared = input.shape;
  if (declared === null) return batch.shape;
  let free = 0;
  const shape = declared.map((dim) => {
    if (typeof dim === 'number') return dim;
    free++;
    return batch.size;
  });
  const elements = shape.reduce((a, b) => a * b, 1);
  if (free !== 1 || elements !== batch.features.length) {
    throw new BatchShapeError(
      `batch of ${batch.size} rows holds ${batch.features.length} values, but model input ${input.name} ` +
        `[${declared.map(String).join(', ')}] needs ${elements} for ${batch.size} rows`,
    );
  }
  return shape;
}

/** Checks once, before training, that a dataset's examples fit the model (so a mismatch fails fast and clearly). */
export function checkDatasetFits(manifest: Manifest, featureShape: readonly number[], dtype: 'float32' | 'int64', numClasses: number): void {
  if (manifest.dataInputs.length !== 1) {
    throw new BatchShapeError(`the model has ${manifest.dataInputs.length} data inputs; local datasets feed exactly one`);
  }
  const input = manifest.dataInputs[0]!;
  if (input.elemType !== dtype) {
    throw new BatchShapeError(`data holds ${dtype} features but model input ${input.name} is ${input.elemType}`);
  }
  if (input.shape !== null) {
    const fixed = input.shape.filter((d): d is number => typeof d === 'number').reduce((a, b) => a * b, 1);
    const perExample = featureShape.reduce((a, b) => a * b, 1);
    if (fixed !== perExample) {
      throw new BatchShapeError(
        `data examples have shape [${featureShape.join(', ')}] (${perExample} values) but model input ${input.name} ` +
          `is [${input.shape.map(String).join(', ')}] (${fixed} values per example)`,
      );
    }
  }
  if (manifest.loss === 'cross-entropy' && manifest.classes !== null && numClasses > manifest.classes) {
    throw new BatchShapeError(`data has ${numClasses} classes but the model predicts ${manifest.classes}`);
  }
  if (manifest.loss !== 'cross-entropy') {
    throw new BatchShapeError(`local classification data needs a cross-entropy model, this one has loss '${manifest.loss}'`);
  }
}

export function feedsForBatch(manifest: Manifest, batch: BatchData): Feeds {
  const input = manifest.dataInputs[0]!;
  const shape = inputShape(manifest, batch);
  const data =
    batch.features instanceof Float32Array
      ? new ort.Tensor('float32', batch.features, shape)
      : new ort.Tensor('int64', batch.features, shape);
  const feeds: Feeds = { [input.name]: data };
  if (manifest.labelInput) feeds[manifest.labelInput.name] = new ort.Tensor('int64', batch.labels, [batch.size]);
  return feeds;
}
