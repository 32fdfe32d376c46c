/**
 * `mezo export`: base + update log at a version, baked into a plain ONNX model. The exported model's outputs
 * equal those of the prepared model fed the replayed slab, and the loss head is gone.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportError, exportModel, materialiseAt, readLog } from '../../coordinator/export-model.js';
import { LogSigner, UpdateLog, replay } from '../../shared/log/index.js';
import { decodeModel, encodeModel, paddingRanges, slabSha256, type PreparedModel } from '../../shared/model/index.js';
import { tensorValueInfo } from '../../shared/model/onnx-builders.js';
import { DataType } from '../../shared/model/onnx-types.js';
import { noise } from '../../shared/noise/index.js';
import { fixture, logHeader } from './fleet-fixture.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mezo-export-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BATCH = 16;
let prepared: PreparedModel;
const logPath = join(dir, 'job.log');

/** A log of four rounds, as a coordinator writes them: a few (seed, coefficient) terms per entry. */
beforeAll(async () => {
  prepared = (await fixture()).prepared;
  const log = await UpdateLog.open(logPath, logHeader(prepared, 'export-test'));
  for (let round = 0; round < 4; round++) {
    const terms = [0, 1, 2].map((k) => ({ seed: BigInt(1000 * round + 17 * k + 3), coeff: (k % 2 === 0 ? -1 : 1) * 2e-3 * (k + 1) }));
    await log.append({ round, lr: 1e-3, terms });
  }
  await log.close();
});

function batch(): Float32Array {
  const x = new Float32Array(BATCH * 784);
  let state = 12345;
  for (let i = 0; i < x.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    x[i] = (state >>> 8) / 2 ** 24;
  }
  return x;
}

/** The prepared model's logits for `slab`: the same graph with the loss head's input also declared as an output. */
async function preparedLogits(slab: Float32Array, x: Float32Array): Promise<Float32Array> {
  const model = decodeModel(prepared.model);
  model.graph!.output = [...(model.graph!.output ?? []), tensorValueInfo(prepared.manifest.lossOutput!, DataType.FLOAT, undefined)];
  const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, extra: { session: { disable_prepacking: '1' } } });
  try {
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor('float32', x, [BATCH, 784]),
      labels: new ort.Tensor('int64', new BigInt64Array(BATCH), [BATCH]),
    };
    for (const t of prepared.manifest.tensors) feeds[t.name] = new ort.Tensor('float32', slab.slice(t.offset, t.offset + t.length), t.shape);
    const out = await session.run(feeds);
    return out[prepared.manifest.lossOutput!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function exportedLogits(bytes: Uint8Array, x: Float32Array): Promise<{ names: { inputs: readonly string[]; outputs: readonly string[] }; logits: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, extra: { session: { disable_prepacking: '1' } } });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, [BATCH, 784]) });
    return { names: { inputs: session.inputNames, outputs: session.outputNames }, logits: out.logits!.data as Float32Array };
  } finally {
    await session.release();
  }
}

describe('mezo export', () => {
  it('bakes base + replay(log) at a version into a model that computes the same outputs without the loss head', async () => {
    const out = join(dir, 'v3.onnx');
    const result = await exportModel(prepared, logPath, out, noise, { version: 3 });
    const log = await readLog(logPath);
    const slab = prepared.slab.slice();
    replay(noise, slab, log.entries.slice(0, 3), 'gaussian', { decayRanges: [], padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length) });
    expect(result).toMatchObject({ version: 3, entryHash: log.entries[2]!.hash, weightsSha256: slabSha256(slab), recovery: undefined });
    expect(slabSha256(slab)).not.toBe(prepared.manifest.slabSha256);

    const bytes = readFileSync(out);
    const graph = decodeModel(bytes).graph!;
    expect(graph.input!.map((v) => v.name)).toEqual(['input']);
    expect(graph.output!.map((v) => v.name)).toEqual(['logits']);
    expect(graph.node!.some((n) => (n.name ?? '').startsWith('mezo_loss/'))).toBe(false);
    expect(new Set(graph.initializer!.map((t) => t.name))).toEqual(new Set(prepared.manifest.tensors.map((t) => t.name)));

    const x = batch();
    const exported = await exportedLogits(bytes, x);
    expect(exported.names).toEqual({ inputs: ['input'], outputs: ['logits'] });
    const reference = await preparedLogits(slab, x);
    expect(exported.logits.length).toBe(BATCH * 10);
    // Bit-equal. (onnxruntime would pre-pack the baked initializers for its GEMM and sum in another order, a
    // ~1e-6 relative difference; both sessions here run with pre-packing disabled to compare exactly.)
    expect(Array.from(exported.logits)).toEqual(Array.from(reference));
    // And the weights really moved: the base model gives other logits.
    expect(Array.from(await preparedLogits(prepared.slab, x))).not.toEqual(Array.from(reference));
  });

  it('refuses a log written for another base, and a version past the head', async () => {
    const other = join(dir, 'other.log');
    const foreign = await UpdateLog.open(other, { ...logHeader(prepared, 'export-test'), baseSha256: 'ab'.repeat(32) });
    await foreign.append({ round: 0, lr: 1e-3, terms: [{ seed: 1n, coeff: 1e-3 }] });
    await foreign.close();
    await expect(exportModel(prepared, other, join(dir, 'x.onnx'), noise)).rejects.toThrow(/written for base abab.*wrong --model/);
    await expect(exportModel(prepared, logPath, join(dir, 'x.onnx'), noise, { version: 5 })).rejects.toThrow(
      /version 5 is past the log's head \(version 4\)/,
    );
    await expect(readLog(join(dir, 'missing.log'))).rejects.toBeInstanceOf(ExportError);
    expect(() => materialiseAt(prepared, { header: logHeader(prepared), entries: [], headHash: '', recovery: undefined }, noise, { version: -1 })).toThrow(ExportError);
    expect(existsSync(join(dir, 'x.onnx'))).toBe(false);
  });

  it('checks every entry\'s signature against the coordinator\'s key, when given one', async () => {
    const signer = LogSigner.generate();
    const signedPath = join(dir, 'signed', 'update.log');
    const signed = await UpdateLog.open(signedPath, logHeader(prepared, 'export-test'), { signer });
    for (const entry of (await readLog(logPath)).entries) await signed.append({ round: entry.round, lr: entry.lr, terms: entry.terms });
    await signed.close();
    const result = await exportModel(prepared, signedPath, join(dir, 'signed.onnx'), noise, { publicKey: signer.publicKey });
    expect(result.version).toBe(4);
    await expect(exportModel(prepared, signedPath, join(dir, 'x.onnx'), noise, { publicKey: LogSigner.generate().publicKey })).rejects.toThrow(
      /entry 1 is signed with another key/,
    );
    // The unsigned log is no coordinator's, as far as a key can tell.
    await expect(exportModel(prepared, logPath, join(dir, 'x.onnx'), noise, { publicKey: signer.publicKey })).rejects.toThrow(/entry 1 is not signed/);
    expect(existsSync(join(dir, 'x.onnx'))).toBe(false);
  });

  it('runs as `mezo export` from the compiled CLI', async () => {
    const out = join(dir, 'head.onnx');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(ROOT, 'bin', 'mezo.js'), 'export', '--log', logPath, '--out', out, '--log-version', '4', '--json'],
      { env: { ...process.env, MEZO_LOG_LEVEL: 'silent' } },
    );
    const report = JSON.parse(stdout) as { version: number; weightsSha256: string };
    const log = await readLog(logPath);
    expect(report.version).toBe(4);
    expect(report.weightsSha256).toBe(slabSha256(materialiseAt(prepared, log, noise)));
    expect(decodeModel(readFileSync(out)).graph!.input!.map((v) => v.name)).toEqual(['input']);
  });
});
