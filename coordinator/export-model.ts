/**
 * Exporting a trained model: the prepared base plus the update log up to a version, materialised (base +
 * replay) and baked back into a plain ONNX model. Trainable weights become initializers again, and the loss
 * head (its nodes, its label input, its loss/correct outputs) is removed, so the result runs like the original
 * model: data inputs in, the output the loss read out.
 *
 * The log is read from a private copy of the file, so exporting never truncates (or otherwise touches) a log a
 * running coordinator is appending to.
 */
import { copyFile, mkdtemp, open, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, basename } from 'node:path';
import { LogVerifier, replay, UpdateLog, type LogEntry, type LogHeaderInput, type TailRecovery } from '../shared/log/index.js';
import { bakeModel, paddingRanges, slabSha256, type PreparedModel } from '../shared/model/index.js';
import type { NoiseEngine } from '../shared/noise/engine.js';
import { noiseModeFor } from '../shared/optim/perturbation.js';

export class ExportError extends Error {
  override name = 'ExportError';
}

// Baking a slab into a plain model is a model transform (shared/model), re-exported for export's callers.
export { bakeModel };

/**
 * Reads a log's header without opening (or repairing) the file: magic "MEZOLOG2" (or "MEZOLOG1", the format
 * UpdateLog.open migrates), u32 length, JSON.
 */
async function readLogHeader(path: string): Promise<LogHeaderInput> {
  const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new ExportError(`cannot read the update log ${path}: ${err.message}`);
  });
  try {
    const prefix = Buffer.alloc(12);
    const { bytesRead } = await handle.read(prefix, 0, 12, 0);
    const magic = prefix.toString('latin1', 0, 8);
    if (bytesRead < 12 || (magic !== 'MEZOLOG2' && magic !== 'MEZOLOG1')) throw new ExportError(`${path} is not a mezo update log`);
    const length = prefix.readUInt32LE(8);
    if (length > 64 * 1024) throw new ExportError(`${path}: the log header is implausibly large (${length} bytes)`);
    const json = Buffer.alloc(length);
    await handle.read(json, 0, length, 12);
    try {
      return JSON.parse(json.toString('utf8')) as LogHeaderInput;
    } catch {
      throw new ExportError(`${path}: the log header is not valid JSON`);
    }
  } finally {
    await handle.close();
  }
}

export interface LoadedLog {
  header: LogHeaderInput;
  entries: LogEntry[];
  headHash: string;
  /** Set when the copy read had a torn final record (cut off in the copy; the original is untouched). */
  recovery: TailRecovery | undefined;
}

/**
 * Reads and verifies a whole update log (chain, checksums; with `publicKey`, every record's signature) from a
 * private copy of the file.
 */
export async function readLog(path: string, options: { publicKey?: string } = {}): Promise<LoadedLog> {
  const header = await readLogHeader(path);
  const scratch = await mkdtemp(join(tmpdir(), 'mezo-export-'));
  try {
    const copy = join(scratch, 'update.log');
    await copyFile(path, copy);
    const log = await UpdateLog.open(copy, header, options.publicKey === undefined ? {} : { verifier: LogVerifier.for(options.publicKey) });
    try {
      return { header, entries: log.entries(), headHash: log.headHash, recovery: log.recovery };
    } finally {
      await log.close();
    }
  } catch (err) {
    if (err instanceof ExportError) throw err;
    throw new ExportError(`cannot read the update log ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface MaterialiseOptions {
  /** Version to materialise (default: the head). */
  version?: number;
}

/** base + replay(entries 1..version): the weights the log describes at `version`, checked against the base. */
export function materialiseAt(prepared: PreparedModel, log: LoadedLog, engine: NoiseEngine, options: MaterialiseOptions = {}): Float32Array {
  const base = prepared.manifest.slabSha256;
  if (log.header.baseSha256 !== base) {
    throw new ExportError(`the log was written for base ${log.header.baseSha256}, but the model's base slab is ${base}: wrong --model for this log`);
  }
  if (slabSha256(prepared.slab) !== base) throw new ExportError('the prepared slab does not match its manifest hash');
  const head = log.entries.length;
  const version = options.version ?? head;
  if (!Number.isSafeInteger(version) || version < 0) throw new ExportError(`version must be a non-negative integer, got ${version}`);
  if (version > head) throw new ExportError(`version ${version} is past the log's head (version ${head})`);
  const slab = prepared.slab.slice();
  // A 'lowrank' log's matrices are the model's (the rank is in the header).
  const { lowRank } = noiseModeFor({ distribution: log.header.distribution, rank: log.header.rank }, prepared.manifest.tensors);
  replay(engine, slab, log.entries.slice(0, version), log.header.distribution, {
    lowRank,
    decayRanges: log.header.decayRanges ?? [],
    base: prepared.slab,
    padding: paddingRanges(prepared.manifest.tensors, prepared.slab.length),
  });
  return slab;
}

export interface ExportResult {
  version: number;
  /** Hash of the log entry at `version` (the genesis state: empty string at version 0). */
  entryHash: string;
  weightsSha256: string;
  bytes: number;
  recovery: TailRecovery | undefined;
}

/** Writes `bytes` to `path` atomically (temporary sibling file, then rename). */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Reads the log at `logPath`, materialises it at `version` on `prepared`, and writes the baked model to `outPath`. */
export async function exportModel(
  prepared: PreparedModel,
  logPath: string,
  outPath: string,
  engine: NoiseEngine,
  options: MaterialiseOptions & { publicKey?: string } = {},
): Promise<ExportResult> {
  const log = await readLog(logPath, options.publicKey === undefined ? {} : { publicKey: options.publicKey });
  const slab = materialiseAt(prepared, log, engine, options);
  const version = options.version ?? log.entries.length;
  const bytes = bakeModel(prepared, slab);
  await writeAtomically(outPath, bytes);
  return {
    version,
    entryHash: version === 0 ? '' : log.entries[version - 1]!.hash,
    weightsSha256: slabSha256(slab),
    bytes: bytes.length,
    recovery: log.recovery,
  };
}
