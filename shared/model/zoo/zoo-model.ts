/** What every zoo builder returns: the encoded model and how to feed it. */
export interface ZooModel {
  /** ONNX ModelProto bytes. */
  bytes: Uint8Array;
  /** The data input and its shape ("batch" is symbolic). */
  input: { name: string; elemType: 'float32' | 'int64'; shape: Array<number | string> };
  /** The logits output, [batch, classes]. */
  output: string;
  classes: number;
  parameterCount: number;
}

/** Options every zoo builder takes. */
export interface CommonZooOptions {
  /** Seed of the weight initialisation (default 1). */
  seed?: bigint | number;
  /** ai.onnx opset to emit (>= 13). */
  opset?: number;
  /**
   * Declare weights by shape only, with no data (default false): the same graph, node for node, for tools that
   * only read shapes (the memory planner sizes models far larger than it could initialise).
   */
  shapesOnly?: boolean;
}

export const BATCH = 'batch';
