/**
 * Nodes in an order where every node comes after the producers of its inputs (ONNX requires graphs to be listed
 * that way already; this keeps the listed order where it is valid and repairs it where it is not).
 */
import type { NodeProto } from '../model/onnx-types.js';
import { PlanError } from './plan-error.js';

export function nodeLabel(node: NodeProto, index?: number): string {
  const name = node.name ? JSON.stringify(node.name) : index !== undefined ? `#${index}` : '(unnamed)';
  return `node ${name} (${node.op_type ?? '?'})`;
}

export function topologicalOrder(nodes: readonly NodeProto[]): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const out of n.output ?? []) if (out) producer.set(out, i);
  });
  const waiting = nodes.map((n) => new Set((n.input ?? []).filter((x) => x && producer.has(x)).map((x) => producer.get(x)!)));
  const consumers = nodes.map(() => [] as number[]);
  waiting.forEach((deps, i) => {
    for (const d of deps) consumers[d]!.push(i);
  });
  // Kahn's algorithm, always taking the earliest listed ready node, so a valid order is kept as is.
  const ready: number[] = [];
  waiting.forEach((deps, i) => {
    if (deps.size === 0) ready.push(i);
  });
  const order: NodeProto[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    order.push(nodes[i]!);
    for (const c of consumers[i]!) {
      const deps = waiting[c]!;
      deps.delete(i);
      if (deps.size === 0) ready.push(c);
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.findIndex((n, i) => waiting[i]!.size > 0 && !order.includes(n));
    throw new PlanError(`the graph has a cycle through ${nodeLabel(nodes[stuck]!, stuck)}`);
  }
  return order;
}
