/**
 * A tiny pre-LayerNorm transformer-encoder text classifier:
 * tokens int64 [batch, seq] → token + position embeddings → layers × (LN, multi-head self-attention, residual,
 * LN, feed-forward, residual) → LN → mean over positions → logits [batch, classes].
 *
 * Attention is spelled out with MatMul/Reshape/Transpose/Softmax so it runs at any opset ≥ 13. LayerNorm is the
 * LayerNormalization operator from opset 17, or decomposed into Reduce/Sub/Sqrt ops otherwise (or on request);
 * Gelu is the operator from opset 20, or its erf form below that.
 */
import { reduceNodes } from '../onnx-builders.js';
import { DataType } from '../onnx-types.js';
import { checkSize, GraphBuilder } from './graph-builder.js';
import { BATCH, type CommonZooOptions, type ZooModel } from './zoo-model.js';

export interface TransformerOptions extends CommonZooOptions {
  vocab?: number;
  dim?: number;
  heads?: number;
  layers?: number;
  /** Sequence length (fixed: the position embedding has one row per position). */
  seq?: number;
  classes?: number;
  /** Feed-forward width (default 4 · dim). */
  ffn?: number;
  activation?: 'gelu' | 'relu';
  /** 'op' needs opset ≥ 17 (default there); 'decomposed' works at any opset. */
  layerNorm?: 'op' | 'decomposed';
}

const LN_EPSILON = 1e-5;

export function buildTransformer(options: TransformerOptions = {}): ZooModel {
  const vocab = checkSize(options.vocab ?? 1000, 'vocab');
  const dim = checkSize(options.dim ?? 64, 'dim');
  const heads = checkSize(options.heads ?? 4, 'heads');
  const layers = checkSize(options.layers ?? 2, 'layers', 1, 64);
  const seq = checkSize(options.seq ?? 32, 'seq');
  const classes = checkSize(options.classes ?? 2, 'classes');
  const ffn = checkSize(options.ffn ?? 4 * dim, 'ffn');
  if (dim % heads !== 0) throw new RangeError(`dim (${dim}) must be a multiple of heads (${heads})`);
  const activation = options.activation ?? 'gelu';
  if (activation !== 'gelu' && activation !== 'relu') throw new RangeError(`activation must be 'gelu' or 'relu', got ${JSON.stringify(activation)}`);
  const opset = options.opset ?? 17;
  const layerNorm = options.layerNorm ?? (opset >= 17 ? 'op' : 'decomposed');
  if (layerNorm === 'op' && opset < 17) throw new RangeError(`layerNorm 'op' needs opset >= 17, got opset ${opset}`);
  if (layerNorm !== 'op' && layerNorm !== 'decomposed') throw new RangeError(`layerNorm must be 'op' or 'decomposed', got ${JSON.stringify(layerNorm)}`);
  const headDim = dim / heads;
  const g = new GraphBuilder({ opset, seed: options.seed ?? 1 , shapesOnly: options.shapesOnly ?? false });

  const norm = (x: string, prefix: string): string => {
    const gamma = g.weight(`${prefix}.weight`, [dim], { constant: 1 });
    const beta = g.weight(`${prefix}.bias`, [dim], { constant: 0 });
    if (layerNorm === 'op') return g.op('LayerNormalization', [x, gamma, beta], prefix, { axis: -1, epsilon: LN_EPSILON });
    g.push(...reduceNodes('ReduceMean', x, `${prefix}/mean`, [-1], true, opset));
    const centered = g.op('Sub', [x, `${prefix}/mean`], `${prefix}/centered`);
    const squared = g.op('Mul', [centered, centered], `${prefix}/squared`);
    g.push(...reduceNodes('ReduceMean', squared, `${prefix}/var`, [-1], true, opset));
    const std = g.op('Sqrt', [g.op('Add', [`${prefix}/var`, g.scalar(LN_EPSILON)], `${prefix}/var_eps`)], `${prefix}/std`);
    const normed = g.op('Div', [centered, std], `${prefix}/normed`);
    return g.op('Add', [g.op('Mul', [normed, gamma], `${prefix}/scaled`), beta], prefix);
  };
  const linear = (x: string, prefix: string, fanIn: number, fanOut: number): string => {
    const w = g.weight(`${prefix}.weight`, [fanIn, fanOut], { std: 1 / Math.sqrt(fanIn) });
    const b = g.weight(`${prefix}.bias`, [fanOut], { constant: 0 });
    return g.op('Add', [g.op('MatMul', [x, w], `${prefix}/matmul`), b], prefix);
  };
  const activate = (x: string, prefix: string): string => {
    if (activation === 'relu') return g.op('Relu', [x], prefix);
    if (opset >= 20) return g.op('Gelu', [x], prefix);
    // gelu(x) = x · ½ · (1 + erf(x / √2))
    const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)], `${prefix}/scaled`)], `${prefix}/erf`);
    const gate = g.op('Mul', [g.op('Add', [erf, g.scalar(1)], `${prefix}/one_plus`), g.scalar(0.5)], `${prefix}/gate`);
    return g.op('Mul', [x, gate], prefix);
  };

  const tokens = g.input('tokens', DataType.INT64, [BATCH, seq]);
  const embedded = g.op('Gather', [g.weight('embed.tokens', [vocab, dim], { std: 0.02 }), tokens], 'embed/tokens', { axis: 0 });
  let x = g.op('Add', [embedded, g.weight('embed.positions', [seq, dim], { std: 0.02 })], 'embed');
  const splitHeads = g.ints([0, seq, heads, headDim]);
  const mergeHeads = g.ints([0, seq, dim]);
  const scale = g.scalar(1 / Math.sqrt(headDim));

  for (let l = 0; l < layers; l++) {
    const p = `blocks.${l}`;
    const h = norm(x, `${p}.ln1`);
    const project = (name: string): string => g.op('Reshape', [linear(h, `${p}.attn.${name}`, dim, dim), splitHeads], `${p}.attn.${name}/heads`);
    const q = g.op('Transpose', [project('q')], `${p}.attn.q/t`, { perm: [0, 2, 1, 3] });
    const kT = g.op('Transpose', [project('k')], `${p}.attn.k/t`, { perm: [0, 2, 3, 1] });
    const v = g.op('Transpose', [project('v')], `${p}.attn.v/t`, { perm: [0, 2, 1, 3] });
    const scores = g.op('Mul', [g.op('MatMul', [q, kT], `${p}.attn/qk`), scale], `${p}.attn/scores`);
    const weights = g.op('Softmax', [scores], `${p}.attn/softmax`, { axis: -1 });
    const context = g.op('Transpose', [g.op('MatMul', [weights, v], `${p}.attn/context`)], `${p}.attn/context_t`, { perm: [0, 2, 1, 3] });
    const merged = g.op('Reshape', [context, mergeHeads], `${p}.attn/merged`);
    x = g.op('Add', [x, linear(merged, `${p}.attn.out`, dim, dim)], `${p}/residual1`);
    const f = activate(linear(norm(x, `${p}.ln2`), `${p}.ffn.up`, dim, ffn), `${p}.ffn/act`);
    x = g.op('Add', [x, linear(f, `${p}.ffn.down`, ffn, dim)], `${p}/residual2`);
  }
  x = norm(x, 'final_ln');
  g.push(...reduceNodes('ReduceMean', x, 'pooled', [1], false, opset));
  g.op('Gemm', ['pooled', g.weight('head.weight', [classes, dim], { std: 1 / Math.sqrt(dim) }), g.weight('head.bias', [classes], { constant: 0 })], 'logits', { transB: 1 });
  g.output('logits', DataType.FLOAT, [BATCH, classes]);
  return {
    bytes: g.build('transformer', `transformer encoder: vocab ${vocab}, dim ${dim}, heads ${heads}, layers ${layers}, seq ${seq}, classes ${classes}`),
    input: { name: 'tokens', elemType: 'int64', shape: [BATCH, seq] },
    output: 'logits',
    classes,
    parameterCount: g.parameterCount,
  };
}
