/**
 * A multilayer perceptron: [batch, sizes[0]] → (Gemm or MatMul+Add, Relu)* → logits [batch, sizes.at(-1)].
 * He-initialised weights (std √(2/fan_in)), zero biases.
 */
import { DataType } from '../onnx-types.js';
import { checkSize, GraphBuilder } from './graph-builder.js';
import { BATCH, type CommonZooOptions, type ZooModel } from './zoo-model.js';

export interface MlpOptions extends CommonZooOptions {
  /** Layer widths, input first and classes last (default [784, 1024, 1024, 10]). */
  sizes?: number[];
  /** Gemm with a PyTorch-style [out, in] weight (default), or MatMul with [in, out] plus Add. */
  layer?: 'gemm' | 'matmul';
}

export function buildMlp(options: MlpOptions = {}): ZooModel {
  const sizes = options.sizes ?? [784, 1024, 1024, 10];
  if (!Array.isArray(sizes) || sizes.length < 2) throw new RangeError(`sizes must list at least an input and an output width, got ${JSON.stringify(sizes)}`);
  sizes.forEach((s, i) => checkSize(s, `sizes[${i}]`));
  const layer = options.layer ?? 'gemm';
  if (layer !== 'gemm' && layer !== 'matmul') throw new RangeError(`layer must be 'gemm' or 'matmul', got ${JSON.stringify(layer)}`);
  const g = new GraphBuilder({ opset: options.opset ?? 13, seed: options.seed ?? 1 , shapesOnly: options.shapesOnly ?? false });

  let x = g.input('input', DataType.FLOAT, [BATCH, sizes[0]!]);
  for (let i = 0; i + 1 < sizes.length; i++) {
    const fanIn = sizes[i]!;
    const fanOut = sizes[i + 1]!;
    const last = i + 2 === sizes.length;
    const std = last ? 1 / Math.sqrt(fanIn) : Math.sqrt(2 / fanIn);
    const bias = g.weight(`fc${i}.bias`, [fanOut], { constant: 0 });
    const out = last ? 'logits' : `fc${i}`;
    if (layer === 'gemm') {
      const w = g.weight(`fc${i}.weight`, [fanOut, fanIn], { std });
      x = g.op('Gemm', [x, w, bias], out, { transB: 1 });
    } else {
      const w = g.weight(`fc${i}.weight`, [fanIn, fanOut], { std });
      x = g.op('Add', [g.op('MatMul', [x, w], `${out}/matmul`), bias], out);
    }
    if (!last) x = g.op('Relu', [x], `relu${i}`);
  }
  const classes = sizes[sizes.length - 1]!;
  g.output('logits', DataType.FLOAT, [BATCH, classes]);
  return {
    bytes: g.build('mlp', `MLP ${sizes.join('-')}`),
    input: { name: 'input', elemType: 'float32', shape: [BATCH, sizes[0]!] },
    output: 'logits',
    classes,
    parameterCount: g.parameterCount,
  };
}
