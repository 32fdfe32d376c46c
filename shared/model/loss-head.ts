/**
 * The loss head appended to a prepared graph, so one run returns one scalar (and, for classification, the
 * number of correct predictions) instead of logits the agent would have to reduce in JS.
 *
 * cross-entropy: loss = −mean_b log_softmax(logits)[b, labels[b]], labels int64 [batch];
 *                correct = Σ_b [argmax(logits[b]) = labels[b]] (float32).
 * mse:           loss = mean((output − targets)²), targets float32 of the output's shape.
 * Only opset-13 operators are used, and Reduce* nodes follow the model's opset (axes attribute or input).
 */
import { ModelPreparationError } from './errors.js';
import { constantNode, int64Tensor, node, reduceNodes, tensorValueInfo, type DimSpec } from './onnx-builders.js';
import { DataType, type NodeProto, type ValueInfo } from './onnx-types.js';

export type LossKind = 'cross-entropy' | 'mse' | 'none';
export const LOSS_KINDS: readonly LossKind[] = ['cross-entropy', 'mse', 'none'];

export const LOSS_OUTPUT = 'loss';
export const CORRECT_OUTPUT = 'correct';
export const LABELS_INPUT = 'labels';
export const TARGETS_INPUT = 'targets';
/** Prefix of every intermediate value and node the head adds. */
export const HEAD_PREFIX = 'mezo_loss/';

export interface LossHead {
  nodes: NodeProto[];
  labelInput: ValueInfo;
  outputs: ValueInfo[];
}

/** The names the head introduces into the graph's namespace (checked for collisions before it is added). */
export function headNames(kind: LossKind): string[] {
  if (kind === 'cross-entropy') return [LABELS_INPUT, LOSS_OUTPUT, CORRECT_OUTPUT];
  if (kind === 'mse') return [TARGETS_INPUT, LOSS_OUTPUT];
  return [];
}

/** Builds the head reading graph output `output` (whose declared shape is `shape`, undefined if unknown). */
export function buildLossHead(kind: Exclude<LossKind, 'none'>, output: string, shape: DimSpec[] | undefined, opset: number): LossHead {
  const head = buildNodes(kind, output, shape, opset);
  // Node names get the prefix too, so they cannot clash with the model's own node names.
  head.nodes.forEach((n, i) => {
    n.name = `${HEAD_PREFIX}${i}_${n.op_type ?? 'node'}`;
  });
  return head;
}

function buildNodes(kind: Exclude<LossKind, 'none'>, output: string, shape: DimSpec[] | undefined, opset: number): LossHead {
  const p = (name: string): string => `${HEAD_PREFIX}${name}`;
  const scalar = (name: string): ValueInfo => tensorValueInfo(name, DataType.FLOAT, []);
  if (kind === 'mse') {
    return {
      nodes: [
        node('Sub', [output, TARGETS_INPUT], [p('diff')]),
        node('Mul', [p('diff'), p('diff')], [p('squared')]),
        ...reduceNodes('ReduceMean', p('squared'), LOSS_OUTPUT, undefined, false, opset),
      ],
      labelInput: tensorValueInfo(TARGETS_INPUT, DataType.FLOAT, shape ?? undefined),
      outputs: [scalar(LOSS_OUTPUT)],
    };
  }
  if (shape !== undefined && shape.length !== 2) {
    throw new ModelPreparationError(
      `cross-entropy needs output ${JSON.stringify(output)} of shape [batch, classes], but it has rank ${shape.length} ([${shape.map(String).join(', ')}])`,
    );
  }
  const batch: DimSpec = shape?.[0] ?? 'batch';
  const one = p('axis1');
  return {
    nodes: [
      constantNode(one, int64Tensor(one, [1], [1])),
      node('Unsqueeze', [LABELS_INPUT, one], [p('labels_2d')]),
      node('LogSoftmax', [output], [p('log_probs')], { axis: 1 }),
      node('GatherElements', [p('log_probs'), p('labels_2d')], [p('picked')], { axis: 1 }),
      ...reduceNodes('ReduceMean', p('picked'), p('mean_log_prob'), undefined, false, opset),
      node('Neg', [p('mean_log_prob')], [LOSS_OUTPUT]),
      node('ArgMax', [output], [p('predicted')], { axis: 1, keepdims: 0 }),
      node('Equal', [p('predicted'), LABELS_INPUT], [p('hit')]),
      node('Cast', [p('hit')], [p('hit_f')], { to: DataType.FLOAT }),
      ...reduceNodes('ReduceSum', p('hit_f'), CORRECT_OUTPUT, [0], false, opset),
    ],
    labelInput: tensorValueInfo(LABELS_INPUT, DataType.INT64, [batch]),
    outputs: [scalar(LOSS_OUTPUT), scalar(CORRECT_OUTPUT)],
  };
}
