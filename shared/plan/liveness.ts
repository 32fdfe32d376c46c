/**
 * The forward pass's peak of live activation memory: a sweep over the nodes in execution order, where a tensor
 * is live from the node that produces it to the last node that reads it. Tensors the caller holds (data inputs,
 * graph outputs) stay live to the end. View-like nodes (Reshape, Flatten, Squeeze, Unsqueeze, Identity) reuse
 * their input's buffer in the runtime, so their output costs nothing and extends the input's lifetime instead.
 */
import type { NodeProto } from '../model/onnx-types.js';
import { tensorBytes, type InferredGraph } from './shape-inference.js';

export const VIEW_OPS: ReadonlySet<string> = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

export interface LivenessOptions {
  /** Tensors that are not activations (weights, initializers, Constant values): never counted. */
  isStatic: (name: string) => boolean;
  /** Tensors live for the whole pass (the inputs the caller feeds). */
  held: readonly string[];
  /** Graph outputs: live from their producer to the end. */
  outputs: readonly string[];
  /** Treat view-like nodes as aliases (default true). */
  aliasViews?: boolean;
}

export interface LivenessResult {
  peakBytes: number;
  /** Index in execution order of the node at which the peak occurs (-1: before the first node). */
  peakStep: number;
  peakNode: string;
  /** The tensors (buffer owners) live at the peak, largest first. */
  liveAtPeak: Array<{ name: string; bytes: number }>;
}

interface Buffer {
  bytes: number;
  birth: number;
  death: number;
}

export function activationPeak(graph: InferredGraph, options: LivenessOptions): LivenessResult {
  const { order, tensors } = graph;
  const end = order.length;
  const aliasViews = options.aliasViews ?? true;
  const owner = new Map<string, string>();
  const buffers = new Map<string, Buffer>();
  const bytesOf = (name: string): number => {
    const t = tensors.get(name);
    return t === undefined ? 0 : tensorBytes(t);
  };
  const rootOf = (name: string): string | undefined => owner.get(name);
  for (const name of options.held) {
    if (options.isStatic(name)) continue;
    owner.set(name, name);
    buffers.set(name, { bytes: bytesOf(name), birth: -1, death: end });
  }
  order.forEach((node: NodeProto, step) => {
    for (const input of node.input ?? []) {
      const root = input ? rootOf(input) : undefined;
      if (root !== undefined) buffers.get(root)!.death = Math.max(buffers.get(root)!.death, step);
    }
    if (node.op_type === 'Constant') return;
    const source = node.input?.[0] ? rootOf(node.input[0]) : undefined;
    (node.output ?? []).forEach((out, i) => {
      if (!out || options.isStatic(out)) return;
      if (aliasViews && i === 0 && VIEW_OPS.has(node.op_type ?? '') && source !== undefined) {
        owner.set(out, source);
        return;
      }
      owner.set(out, out);
      buffers.set(out, { bytes: bytesOf(out), birth: step, death: step });
    });
  });
  for (const out of options.outputs) {
    const root = rootOf(out);
    if (root !== undefined) buffers.get(root)!.death = end;
  }
  // Sweep over steps −1 (inputs only) … end−1, slot i = step + 1: +bytes at birth, −bytes after death.
  const delta = new Array<number>(end + 2).fill(0);
  for (const b of buffers.values()) {
    delta[b.birth + 1]! += b.bytes;
    delta[Math.min(b.death, end - 1) + 2]! -= b.bytes;
  }
  let live = 0;
  let peakBytes = 0;
  let peakStep = -1;
  for (let slot = 0; slot <= end; slot++) {
    live += delta[slot]!;
    if (live > peakBytes) {
      peakBytes = live;
      peakStep = slot - 1;
    }
  }
  const liveAtPeak = [...buffers.entries()]
    .filter(([, b]) => b.birth <= peakStep && b.death >= peakStep)
    .map(([name, b]) => ({ name, bytes: b.bytes }))
    .sort((a, b) => b.bytes - a.bytes);
  const peakNode = peakStep >= 0 ? (order[peakStep]!.name ?? order[peakStep]!.op_type ?? '') : '(inputs)';
  return { peakBytes, peakStep, peakNode, liveAtPeak };
}
