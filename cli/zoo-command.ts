import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';

export interface ZooCommandOptions {
  out: string;
  seed?: string;
  opset?: number;
  sizes?: number[];
  layer?: 'gemm' | 'matmul';
  channels?: number[];
  hidden?: number;
  classes?: number;
  vocab?: number;
  dim?: number;
  heads?: number;
  layers?: number;
  seq?: number;
  ffn?: number;
  activation?: 'gelu' | 'relu';
}

export const ZOO_KINDS = ['mlp', 'cnn', 'transformer'] as const;
export type ZooKind = (typeof ZOO_KINDS)[number];

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

function intList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^[0-9]+$/.test(p) || Number(p) < 1)) throw new InvalidArgumentError('must be comma-separated positive integers, e.g. 784,1024,10');
  return parts.map(Number);
}

function seedValue(value: string): string {
  if (!/^[0-9]{1,20}$/.test(value) || BigInt(value) >= 1n << 64n) throw new InvalidArgumentError('must be an integer in [0, 2^64)');
  return value;
}

function oneOf<T extends string>(allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${allowed.join(', ')}`);
    return value as T;
  };
}

/** Builds a zoo model and writes it to `options.out` (temp file + rename, so no partial file is left). */
export async function runZoo(kind: ZooKind, options: ZooCommandOptions): Promise<{ out: string; parameters: number; bytes: number }> {
  const zoo = await import('../shared/model/zoo/index.js');
  const seed = BigInt(options.seed ?? '1');
  const common = { seed, ...(options.opset !== undefined ? { opset: options.opset } : {}) };
  const pick = <K extends keyof ZooCommandOptions>(...keys: K[]): Partial<Pick<ZooCommandOptions, K>> =>
    Object.fromEntries(keys.filter((k) => options[k] !== undefined).map((k) => [k, options[k]])) as Partial<Pick<ZooCommandOptions, K>>;
  let model;
  if (kind === 'mlp') model = zoo.buildMlp({ ...common, ...pick('sizes', 'layer') });
  else if (kind === 'cnn') {
    if (options.channels !== undefined && options.channels.length !== 2) throw new RangeError('--channels takes two values, e.g. 8,16');
    model = zoo.buildCnn({ ...common, ...pick('hidden', 'classes'), ...(options.channels ? { channels: options.channels as [number, number] } : {}) });
  } else model = zoo.buildTransformer({ ...common, ...pick('vocab', 'dim', 'heads', 'layers', 'seq', 'classes', 'ffn', 'activation') });

  const out = resolve(options.out);
  await mkdir(dirname(out), { recursive: true });
  const temp = `${out}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(temp, model.bytes);
    await rename(temp, out);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return { out, parameters: model.parameterCount, bytes: model.bytes.length };
}

/** `mezo zoo`: writes a model built in code (MLP, CNN or tiny transformer), deterministic from --seed. */
export function registerZooCommand(program: Command): void {
  program
    .command('zoo')
    .description('build a model from the zoo (mlp, cnn, transformer) with weights drawn deterministically from --seed')
    .argument('<kind>', 'mlp | cnn | transformer', oneOf(ZOO_KINDS))
    // Checked in the action, not by commander: it checks required options before arguments, so `mezo zoo`
    // alone would complain about --out instead of the missing kind.
    .option('-o, --out <file>', 'where to write the .onnx model (required)')
    .option('--seed <n>', 'initialisation seed, an integer in [0, 2^64)', seedValue, '1')
    .option('--opset <n>', 'ai.onnx opset to emit (>= 13; default 13 mlp, 18 cnn, 17 transformer)', positiveInt)
    .option('--sizes <list>', 'mlp: layer widths, input first, classes last (default 784,1024,1024,10)', intList)
    .option('--layer <kind>', 'mlp: gemm or matmul', oneOf(['gemm', 'matmul'] as const))
    .option('--channels <list>', 'cnn: channels of the two conv stages (default 8,16)', intList)
    .option('--hidden <n>', 'cnn: hidden fully connected width (default 64)', positiveInt)
    .option('--classes <n>', 'cnn/transformer: number of classes', positiveInt)
    .option('--vocab <n>', 'transformer: vocabulary size (default 1000)', positiveInt)
    .option('--dim <n>', 'transformer: model width (default 64)', positiveInt)
    .option('--heads <n>', 'transformer: attention heads (default 4)', positiveInt)
    .option('--layers <n>', 'transformer: encoder blocks (default 2)', positiveInt)
    .option('--seq <n>', 'transformer: sequence length (default 32)', positiveInt)
    .option('--ffn <n>', 'transformer: feed-forward width (default 4 x dim)', positiveInt)
    .option('--activation <kind>', 'transformer: gelu or relu', oneOf(['gelu', 'relu'] as const))
    .action(async (kind: ZooKind, options: Partial<ZooCommandOptions>, command: Command) => {
      if (options.out === undefined) command.error("error: required option '-o, --out <file>' not specified");
      let result;
      try {
        result = await runZoo(kind, options as ZooCommandOptions);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`wrote ${result.out}: ${kind}, ${result.parameters.toLocaleString('en-US')} parameters, ${result.bytes} bytes\n`);
    });
}
