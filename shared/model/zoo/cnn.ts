/**
 * A small CNN for 1×28×28 images: two (Conv 3×3 pad 1, Relu, MaxPool 2×2) stages, Flatten, Gemm, Relu, Gemm.
 * 28 → 14 → 7, so the classifier sees channels[1]·7·7 features.
 */
import { DataType } from '../onnx-types.js';
import { checkSize, GraphBuilder } from './graph-builder.js';
import { BATCH, type CommonZooOptions, type ZooModel } from './zoo-model.js';

export interface CnnOptions extends CommonZooOptions {
  /** Output channels of the two conv stages (default [8, 16]). */
  channels?: [number, number];
  /** Width of the hidden fully connected layer (default 64). */
  hidden?: number;
  classes?: number;
}

export function buildCnn(options: CnnOptions = {}): ZooModel {
  const channels = options.channels ?? [8, 16];
  if (!Array.isArray(channels) || channels.length !== 2) throw new RangeError(`channels must be two integers, got ${JSON.stringify(channels)}`);
  const [c1, c2] = [checkSize(channels[0], 'channels[0]', 1, 4096), checkSize(channels[1], 'channels[1]', 1, 4096)];
  const hidden = checkSize(options.hidden ?? 64, 'hidden');
  const classes = checkSize(options.classes ?? 10, 'classes');
  const g = new GraphBuilder({ opset: options.opset ?? 18, seed: options.seed ?? 1 , shapesOnly: options.shapesOnly ?? false });

  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
  const pool = { kernel_shape: [2, 2], strides: [2, 2] };
  let x = g.input('input', DataType.FLOAT, [BATCH, 1, 28, 28]);
  x = g.op('Conv', [x, g.weight('conv1.weight', [c1, 1, 3, 3], { std: Math.sqrt(2 / 9) }), g.weight('conv1.bias', [c1], { constant: 0 })], 'conv1', conv);
  x = g.op('MaxPool', [g.op('Relu', [x], 'relu1')], 'pool1', pool);
  x = g.op('Conv', [x, g.weight('conv2.weight', [c2, c1, 3, 3], { std: Math.sqrt(2 / (9 * c1)) }), g.weight('conv2.bias', [c2], { constant: 0 })], 'conv2', conv);
  x = g.op('MaxPool', [g.op('Relu', [x], 'relu2')], 'pool2', pool);
  x = g.op('Flatten', [x], 'flat', { axis: 1 });
  const features = c2 * 7 * 7;
  x = g.op('Gemm', [x, g.weight('fc1.weight', [hidden, features], { std: Math.sqrt(2 / features) }), g.weight('fc1.bias', [hidden], { constant: 0 })], 'fc1', { transB: 1 });
  x = g.op('Relu', [x], 'relu3');
  g.op('Gemm', [x, g.weight('fc2.weight', [classes, hidden], { std: 1 / Math.sqrt(hidden) }), g.weight('fc2.bias', [classes], { constant: 0 })], 'logits', { transB: 1 });
  g.output('logits', DataType.FLOAT, [BATCH, classes]);
  return {
    bytes: g.build('cnn', `CNN 1x28x28 -> ${c1},${c2} channels -> ${hidden} -> ${classes}`),
    input: { name: 'input', elemType: 'float32', shape: [BATCH, 1, 28, 28] },
    output: 'logits',
    classes,
    parameterCount: g.parameterCount,
  };
}
