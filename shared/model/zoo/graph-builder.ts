/**
 * Building ONNX models in code, for the zoo and for tests. Weights are drawn deterministically from the
 * project's noise stream: every initializer takes the next slice of z(seed) (by global offset), scaled for its
 * fan-in, so the same seed and sizes give the same model bit for bit on every host and noise implementation.
 */
import { noise } from '../../noise/index.js';
import { constantNode, floatTensor, int64Tensor, node, tensorValueInfo, type AttributeValue, type DimSpec } from '../onnx-builders.js';
import { encodeModel } from '../onnx-codec.js';
import { DataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfo } from '../onnx-types.js';

/** How an initializer starts: standard normal scaled by `std`, or a constant. */
export type Init = { std: number } | { constant: number };

/** The IR version that goes with an opset (the oldest IR that can carry it). */
export function irVersionFor(opset: number): number {
  if (opset <= 13) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

export class GraphBuilder {
  readonly opset: number;
  private readonly seed: bigint | number;
  private readonly shapesOnly: boolean;
  private drawn = 0;
  private constants = 0;
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];

  constructor(options: { opset: number; seed: bigint | number; shapesOnly?: boolean }) {
    if (!Number.isInteger(options.opset) || options.opset < 13) {
      throw new RangeError(`opset must be an integer >= 13, got ${String(options.opset)}`);
    }
    this.opset = options.opset;
    this.seed = options.seed;
    this.shapesOnly = options.shapesOnly ?? false;
  }

  /** Adds a float32 initializer (data-less when building shapes only) and returns its name. */
  weight(name: string, dims: readonly number[], init: Init): string {
    if (this.shapesOnly) {
      this.initializers.push({ name, dims: [...dims], data_type: DataType.FLOAT });
      return name;
    }
    const count = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    if ('constant' in init) data.fill(init.constant);
    else {
      noise.sample(data, this.seed, { offset: this.drawn });
      this.drawn += count;
      for (let i = 0; i < count; i++) data[i] = data[i]! * init.std;
    }
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** Adds a raw initializer (any type) and returns its name. */
  tensor(tensor: TensorProto): string {
    this.initializers.push(tensor);
    return tensor.name!;
  }

  /** A Constant node with an int64 vector (shapes, axes); never an initializer, so never trainable. */
  ints(values: readonly number[]): string {
    const name = `const/${this.constants++}`;
    this.nodes.push(constantNode(name, int64Tensor(name, [values.length], values)));
    return name;
  }

  /** A Constant node with a float32 scalar. */
  scalar(value: number): string {
    const name = `const/${this.constants++}`;
    this.nodes.push(constantNode(name, floatTensor(name, [], Float32Array.of(value))));
    return name;
  }

  /** Appends a node with one output and returns that output's name. */
  op(opType: string, inputs: string[], output: string, attributes: Record<string, AttributeValue> = {}): string {
    this.nodes.push(node(opType, inputs, [output], attributes));
    return output;
  }

  /** Appends prebuilt nodes (e.g. from reduceNodes). */
  push(...nodes: NodeProto[]): void {
    this.nodes.push(...nodes);
  }

  input(name: string, elemType: number, shape: DimSpec[]): string {
    this.inputs.push(tensorValueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, elemType: number, shape: DimSpec[]): void {
    this.outputs.push(tensorValueInfo(name, elemType, shape));
  }

  model(graphName: string, docString: string): ModelProto {
    return {
      ir_version: irVersionFor(this.opset),
      producer_name: 'mezo-fleet zoo',
      producer_version: '1',
      doc_string: docString,
      opset_import: [{ domain: '', version: this.opset }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
  }

  build(graphName: string, docString: string): Uint8Array {
    return encodeModel(this.model(graphName, docString));
  }

  /** Elements in all initializers so far. */
  get parameterCount(): number {
    return this.initializers.reduce((a, t) => a + (t.dims ?? []).reduce<number>((x, d) => x * Number(d), 1), 0);
  }
}

/** Validates a size option: an integer in [min, max], named in the error. */
export function checkSize(value: unknown, name: string, min = 1, max = 1 << 20): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
