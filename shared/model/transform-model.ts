/**
 * Model transforms on a prepared model: baking a slab back into a plain ONNX model (what `mezo export` writes),
 * narrowing which tensors are trainable (the rest frozen into the graph with their current values), and
 * reparametrising tensors as s · W' so that zeroth-order steps on them are s² as large.
 */
import { ModelPreparationError } from './errors.js';
import { HEAD_PREFIX } from './loss-head.js';
import { slabSha256 } from './hashing.js';
import { compilePattern, type NamePattern } from './name-pattern.js';
import { constantNode, floatTensor, node, tensorValueInfo, type DimSpec } from './onnx-builders.js';
import { decodeModel, encodeModel } from './onnx-codec.js';
import { DataType, type GraphProto, type ValueInfo } from './onnx-types.js';
import { prepareModel, type PreparedModel } from './prepare-model.js';

/**
 * The prepared model with `slab` baked in: every slab tensor becomes a float32 initializer (and stops being a
 * graph input), the loss head's nodes and label input are dropped, and the graph output is the one the loss
 * read (float32; its shape as far as the manifest records it). A model prepared with loss 'none' keeps its
 * outputs. Pure: `prepared` is not modified.
 */
export function bakeModel(prepared: PreparedModel, slab: Float32Array): Uint8Array {
  const { manifest } = prepared;
  if (!(slab instanceof Float32Array) || slab.length !== manifest.slabLength) {
    throw new ModelPreparationError(`the slab must be a Float32Array of ${manifest.slabLength} values, got ${slab?.length ?? typeof slab}`);
  }
  const model = decodeModel(prepared.model, 'prepared model');
  const graph = model.graph!;
  const slabNames = new Set(manifest.tensors.map((t) => t.name));
  const labelName = manifest.labelInput?.name;
  const declared = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const absent = manifest.tensors.filter((t) => !declared.has(t.name));
  if (absent.length > 0) throw new ModelPreparationError(`the prepared model does not declare slab tensor(s) ${absent.map((t) => t.name).join(', ')} as inputs`);

  graph.input = (graph.input ?? []).filter((v) => !slabNames.has(v.name ?? '') && v.name !== labelName);
  graph.initializer = [
    ...(graph.initializer ?? []),
    // Copies: the initializers must not alias the caller's slab.
    ...manifest.tensors.map((t) => floatTensor(t.name, t.shape, slab.slice(t.offset, t.offset + t.length))),
  ];
  if (manifest.loss !== 'none') {
    if (manifest.lossOutput === null) throw new ModelPreparationError(`the manifest names no output for its ${manifest.loss} loss`);
    graph.node = (graph.node ?? []).filter((n) => !(n.name ?? '').startsWith(HEAD_PREFIX));
    graph.output = [lossOutputInfo(prepared)];
  }
  return encodeModel(model);
}

/** The original output the loss head read. Its declaration was replaced by the head's outputs; rebuild it. */
function lossOutputInfo(prepared: PreparedModel): ValueInfo {
  const { manifest } = prepared;
  const name = manifest.lossOutput!;
  let shape: DimSpec[] | undefined;
  if (manifest.loss === 'cross-entropy') {
    shape = [manifest.labelInput?.shape?.[0] ?? null, manifest.classes];
  } else if (manifest.labelInput?.shape) {
    shape = manifest.labelInput.shape; // mse targets have the output's shape
  }
  return tensorValueInfo(name, DataType.FLOAT, shape);
}

/**
 * The prepared model with only the tensors `trainable` selects still trainable: the others are frozen into the
 * graph with their values in `prepared.slab`, and the slab holds the selected ones alone (laid out afresh). The
 * same loss head is rebuilt, so the model computes the same function; a zeroth-order step then perturbs and
 * updates only the selected tensors (what `mezo prepare --trainable` does to an ONNX model, here applied to a
 * prepared one). Pure: `prepared` is not modified.
 */
export function narrowTrainable(prepared: PreparedModel, trainable: NamePattern | readonly NamePattern[]): PreparedModel {
  const { manifest } = prepared;
  const output = manifest.loss === 'none' ? undefined : (manifest.lossOutput ?? undefined);
  return prepareModel(bakeModel(prepared, prepared.slab), { trainable, loss: manifest.loss, ...(output === undefined ? {} : { output }) });
}

/** One `scaleTrainable` rule: the trainable tensors `pattern` selects are reparametrised with factor `factor`. */
export interface TensorScale {
  pattern: NamePattern;
  factor: number;
}

/** The factors scaleTrainable accepts: powers of two, so that s · (W / s) is W again, bit for bit. */
const MIN_SCALE_EXPONENT = -12;
const MAX_SCALE_EXPONENT = 12;

/**
 * The prepared model with the selected trainable tensors reparametrised as W = s · W': the slab holds W' = W / s
 * and the graph multiplies it by s (a Mul node) before anything reads it, so the model computes the same function
 * from the same weights. A zeroth-order step perturbs and updates W', so on W it moves s times as far per
 * direction, and since the measured slope along the direction is s times as large too, its expected step on W is
 * s² times the unscaled one: per-tensor step sizes (layer-wise rates) with no change to the noise, the log or
 * replay. Factors must be powers of two (2⁻¹² … 2¹²), which makes W' exact; a tensor matched by several rules
 * takes the first. `what` names the option in errors. Pure: `prepared` is not modified.
 */
export function scaleTrainable(prepared: PreparedModel, scales: readonly TensorScale[], what = 'scales'): PreparedModel {
  const { manifest } = prepared;
  const rules = scales.map(({ pattern, factor }, i) => {
    const exponent = Math.log2(factor);
    if (!Number.isFinite(factor) || !Number.isInteger(exponent) || exponent < MIN_SCALE_EXPONENT || exponent > MAX_SCALE_EXPONENT) {
      throw new ModelPreparationError(`${what}[${i}].factor must be a power of two from 2^${MIN_SCALE_EXPONENT} to 2^${MAX_SCALE_EXPONENT} (so that the base weights stay exact), got ${factor}`);
    }
    return { matches: compilePattern(pattern, `${what}[${i}].pattern`), factor, pattern, used: false };
  });
  const factors = new Map<string, number>();
  for (const t of manifest.tensors) {
    const rule = rules.find((r) => r.matches.test(t.name));
    if (rule === undefined || rule.factor === 1) continue;
    rule.used = true;
    factors.set(t.name, rule.factor);
  }
  const unused = rules.find((r) => !r.used && r.factor !== 1);
  if (unused !== undefined) {
    throw new ModelPreparationError(`${what}: pattern ${JSON.stringify(String(unused.pattern))} selects no trainable tensor (trainable: ${manifest.tensors.map((t) => t.name).join(', ')})`);
  }
  if (factors.size === 0) return prepared;

  const model = decodeModel(prepared.model, 'prepared model');
  const graph = model.graph!;
  const taken = new Set([...(graph.input ?? []), ...(graph.output ?? []), ...(graph.value_info ?? [])].map((v) => v.name ?? ''));
  for (const t of graph.initializer ?? []) taken.add(t.name ?? '');
  for (const n of graph.node ?? []) for (const out of n.output ?? []) taken.add(out);
  const slab = prepared.slab.slice();
  const added: NonNullable<GraphProto['node']> = [];
  const renamed = new Map<string, string>();
  for (const t of manifest.tensors) {
    const factor = factors.get(t.name);
    if (factor === undefined) continue;
    const scaled = `${t.name}/scaled`;
    const constant = `${t.name}/scale`;
    for (const name of [scaled, constant]) {
      if (taken.has(name)) throw new ModelPreparationError(`cannot scale ${t.name}: the model already uses the name ${JSON.stringify(name)}`);
    }
    if (usedInSubgraph(graph, t.name)) throw new ModelPreparationError(`cannot scale ${t.name}: a subgraph (If/Loop/Scan body) reads it`);
    const view = slab.subarray(t.offset, t.offset + t.length);
    for (let i = 0; i < view.length; i++) {
      const w = view[i]!;
      const reduced = Math.fround(w / factor);
      // Only a weight whose quotient leaves the normal range could lose bits; the model must stay the same.
      if (Math.fround(reduced * factor) !== w) throw new ModelPreparationError(`cannot scale ${t.name} by ${factor}: its weight ${w} at ${i} is not exact after division`);
      view[i] = reduced;
    }
    // A Constant node, not an initializer: preparing the model again (narrowTrainable) must not make it trainable.
    added.push(constantNode(constant, floatTensor(constant, [], new Float32Array([factor]))));
    added.push(node('Mul', [t.name, constant], [scaled], {}, `${t.name}/rescale`));
    renamed.set(t.name, scaled);
  }
  for (const n of graph.node ?? []) n.input = (n.input ?? []).map((name) => renamed.get(name) ?? name);
  const outputs = (graph.output ?? []).filter((o) => renamed.has(o.name ?? ''));
  if (outputs.length > 0) throw new ModelPreparationError(`cannot scale ${outputs[0]!.name}: it is a graph output`);
  graph.node = [...added, ...(graph.node ?? [])];
  const bytes = encodeModel(model);
  return {
    model: bytes,
    slab,
    manifest: { ...manifest, tensors: manifest.tensors.map((t) => ({ ...t })), slabSha256: slabSha256(slab) },
    warnings: [...prepared.warnings],
  };
}

/** Whether a node's subgraph attribute (If/Loop/Scan) reads `name` from the enclosing graph. */
function usedInSubgraph(graph: GraphProto, name: string): boolean {
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
        if ((g.node ?? []).some((m) => (m.input ?? []).includes(name)) || usedInSubgraph(g, name)) return true;
      }
    }
  }
  return false;
}
