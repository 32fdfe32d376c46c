/**
 * What backpropagation keeps from the forward pass: for each node, the tensors its gradient formula reads
 * (the way autograd frameworks save them), counted once each. Only tensors on a path from a trainable weight
 * need gradients; data inputs, weights and constants are held anyway and cost nothing extra here.
 *
 *   bilinear (Gemm, MatMul, Conv, Mul): each operand is kept when the other one needs a gradient
 *   Div a/b: b when a needs a gradient; a and b when b does
 *   Relu, Sigmoid, Tanh, Softmax, LogSoftmax, Exp, Sqrt: the output
 *   Gelu, Erf, Log, Pow, Reciprocal, LeakyRelu, Elu, Clip, Abs, MaxPool, BatchNormalization, ReduceMax/Min: the input
 *   LayerNormalization: the input, plus its mean and inverse deviation (one value per normalised row each)
 *   shape ops, Add, Sub, Neg, ReduceMean/ReduceSum, AveragePool, Gather, Concat, Cast: nothing beyond indices
 */
import type { NodeProto } from '../model/onnx-types.js';
import type { PlanGraph } from './plan-graph.js';
import { elementCount, tensorBytes, type InferredGraph } from './shape-inference.js';

const SAVES_OUTPUT = new Set(['Relu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'Exp', 'Sqrt']);
const SAVES_INPUT = new Set(['Gelu', 'Erf', 'Log', 'Pow', 'Reciprocal', 'LeakyRelu', 'Elu', 'Clip', 'Abs', 'MaxPool', 'BatchNormalization', 'ReduceMax', 'ReduceMin', 'Softplus']);
const BILINEAR = new Set(['Gemm', 'MatMul', 'Conv', 'Mul']);
/** Operators whose outputs carry no gradient. */
const NON_DIFFERENTIABLE = new Set(['Shape', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'Constant', 'Floor', 'Ceil', 'Round', 'Sign']);

export interface BackwardStorage {
  /** Bytes of the activations kept for the backward pass (data inputs, weights and constants excluded). */
  storedBytes: number;
  /** The kept tensors, by name, with their bytes. */
  stored: Map<string, number>;
  /** The largest tensor that carries a gradient (the backward pass holds about two of these in flight). */
  largestGradientBytes: number;
  /** Nodes that multiply by a trainable weight (Gemm, MatMul, Conv): the "layers" checkpointing counts. */
  layers: number;
}

export function backwardStorage(graph: PlanGraph, inferred: InferredGraph): BackwardStorage {
  const requiresGrad = new Set<string>(graph.trainable.keys());
  const constants = new Set<string>();
  const dataInputs = new Set(graph.dataInputs.map((i) => i.name ?? ''));
  const free = (name: string): boolean => graph.trainable.has(name) || graph.frozen.has(name) || dataInputs.has(name) || constants.has(name);
  const stored = new Map<string, number>();
  let largestGradientBytes = 0;
  let layers = 0;
  const keep = (name: string | undefined): void => {
    if (!name || free(name) || stored.has(name)) return;
    const t = inferred.tensors.get(name);
    if (t) stored.set(name, tensorBytes(t));
  };
  for (const node of inferred.order as NodeProto[]) {
    const op = node.op_type ?? '';
    const inputs = node.input ?? [];
    const outputs = node.output ?? [];
    if (op === 'Constant') {
      for (const o of outputs) constants.add(o);
      continue;
    }
    const grads = inputs.map((i) => !!i && requiresGrad.has(i));
    if (!grads.some(Boolean) || NON_DIFFERENTIABLE.has(op)) continue;
    const first = outputs[0];
    if (first) {
      requiresGrad.add(first);
      const t = inferred.tensors.get(first);
      if (t && t.elemType === 1) largestGradientBytes = Math.max(largestGradientBytes, tensorBytes(t));
    }
    if (BILINEAR.has(op)) {
      if (op !== 'Mul' && inputs.slice(0, 2).some((i) => graph.trainable.has(i))) layers += 1;
      if (grads[1]) keep(inputs[0]);
      if (grads[0]) keep(inputs[1]);
    } else if (op === 'Div') {
      if (grads[0]) keep(inputs[1]);
      if (grads[1]) {
        keep(inputs[0]);
        keep(inputs[1]);
      }
    } else if (SAVES_OUTPUT.has(op)) keep(first);
    else if (SAVES_INPUT.has(op)) keep(inputs[0]);
    else if (op === 'LayerNormalization') {
      keep(inputs[0]);
      const x = inferred.tensors.get(inputs[0]!);
      if (x) {
        // Mean and inverse deviation: one float each per normalised row (normalising over the last axis).
        const rows = elementCount(x.shape) / (x.shape.at(-1) ?? 1);
        stored.set(`${first}/statistics`, 2 * 4 * rows);
      }
    } else if (op === 'GatherElements' || op === 'Gather') keep(inputs[1]);
  }
  const storedBytes = [...stored.values()].reduce((a, b) => a + b, 0);
  return { storedBytes, stored, largestGradientBytes, layers };
}
