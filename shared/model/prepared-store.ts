/**
 * A prepared model on disk: dir/model.onnx, dir/base.slab (raw little-endian float32) and dir/manifest.json.
 * Writing is all-or-nothing: files are staged in a sibling temporary directory and moved into place only once
 * all three are complete. Loading trusts nothing: the manifest is schema-checked, the slab's size and sha256
 * must match it, and the model must declare every slab tensor as an input of the recorded shape.
 */
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ModelPreparationError, reasonOf } from './errors.js';
import { slabSha256 } from './hashing.js';
import { parseManifest, type Manifest } from './manifest.js';
import { HOST_LITTLE_ENDIAN, littleEndianBytes } from './onnx-builders.js';
import { decodeModel } from './onnx-codec.js';
import { declaredShape, type PreparedModel } from './prepare-model.js';
import { DataType } from './onnx-types.js';

export const MODEL_FILE = 'model.onnx';
export const SLAB_FILE = 'base.slab';
export const MANIFEST_FILE = 'manifest.json';

export interface WriteOptions {
  /** Replace the files of an existing, non-empty directory (default false: refuse). */
  overwrite?: boolean;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Writes `prepared` to `dir`. The manifest's slab hash is recomputed, so a slab trained in place can be saved
 * as a new base. Returns the absolute directory.
 */
export async function writePrepared(dir: string, prepared: PreparedModel, options: WriteOptions = {}): Promise<string> {
  if (typeof dir !== 'string' || dir.length === 0) throw new ModelPreparationError(`dir must be a non-empty path, got ${JSON.stringify(dir)}`);
  const target = resolve(dir);
  const manifest = parseManifest({ ...prepared.manifest, slabSha256: slabSha256(prepared.slab) }, 'prepared.manifest');
  if (!(prepared.slab instanceof Float32Array) || prepared.slab.length !== manifest.slabLength) {
    throw new ModelPreparationError(
      `prepared.slab must be a Float32Array of manifest.slabLength = ${manifest.slabLength} values, got ${prepared.slab?.length ?? typeof prepared.slab}`,
    );
  }
  if (!(prepared.model instanceof Uint8Array) || prepared.model.length === 0) {
    throw new ModelPreparationError('prepared.model must be non-empty ONNX bytes');
  }

  let existing: string[] | undefined;
  try {
    existing = await readdir(target);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw new ModelPreparationError(`cannot use output directory ${target}: ${reasonOf(err)}`, { cause: err });
  }
  if (existing !== undefined && existing.length > 0 && !options.overwrite) {
    throw new ModelPreparationError(`output directory ${target} exists and is not empty; choose another directory or overwrite it (--overwrite)`);
  }

  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    await writeFile(join(staging, MODEL_FILE), prepared.model);
    await writeFile(join(staging, SLAB_FILE), littleEndianBytes(prepared.slab));
    await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    if (existing === undefined || existing.length === 0) {
      // One rename publishes all three files (an empty directory is replaced atomically on POSIX).
      if (existing !== undefined) await rmdir(target);
      await rename(staging, target);
    } else {
      // Each rename is atomic; the manifest goes last, and loadPrepared's hash check catches a mixed state.
      for (const file of [MODEL_FILE, SLAB_FILE, MANIFEST_FILE]) await rename(join(staging, file), join(target, file));
      await rmdir(staging);
    }
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err instanceof ModelPreparationError
      ? err
      : new ModelPreparationError(`writing the prepared model to ${target} failed: ${reasonOf(err)}`, { cause: err });
  }
  return target;
}

async function readRequired(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = errnoCode(err) === 'ENOENT' ? 'file not found' : reasonOf(err);
    throw new ModelPreparationError(`${what} ${path}: ${reason}`, { cause: err });
  }
}

/** Checks that the model declares each slab tensor as a float32 input of the manifest's shape. */
function checkModelAgainstManifest(model: Uint8Array, manifest: Manifest, source: string): void {
  const graph = decodeModel(model, source).graph!;
  const inputs = new Map((graph.input ?? []).map((v) => [v.name ?? '', v]));
  for (const t of manifest.tensors) {
    const input = inputs.get(t.name);
    if (input === undefined) throw new ModelPreparationError(`${source}: manifest tensor ${JSON.stringify(t.name)} is not a model input`);
    const elemType = input.type?.tensor_type?.elem_type;
    const shape = declaredShape(input);
    if (elemType !== DataType.FLOAT || (shape !== undefined && shape.join(',') !== t.shape.join(','))) {
      throw new ModelPreparationError(
        `${source}: input ${JSON.stringify(t.name)} does not match the manifest (float32 [${t.shape.join(', ')}] expected)`,
      );
    }
  }
  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  if (outputs.join('\n') !== manifest.outputs.join('\n')) {
    throw new ModelPreparationError(`${source}: outputs [${outputs.join(', ')}] differ from the manifest's [${manifest.outputs.join(', ')}]`);
  }
}

/**
 * Reads the slab file straight into a fresh Float32Array (aligned, owned by the caller), without an
 * intermediate Buffer: on a small device the slab may be most of the memory there is.
 */
async function readSlab(path: string, length: number): Promise<Float32Array> {
  const slab = new Float32Array(length);
  const bytes = new Uint8Array(slab.buffer);
  const file = await open(path, 'r');
  try {
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await file.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) throw new ModelPreparationError(`base slab ${path}: unexpected end of file at byte ${done}`);
      done += bytesRead;
    }
  } finally {
    await file.close();
  }
  if (!HOST_LITTLE_ENDIAN) {
    const view = new DataView(slab.buffer);
    for (let i = 0; i < length; i++) slab[i] = view.getFloat32(i * 4, true);
  }
  return slab;
}

/** Loads and verifies a directory written by writePrepared. */
export async function loadPrepared(dir: string): Promise<PreparedModel> {
  const root = resolve(dir);
  const manifestPath = join(root, MANIFEST_FILE);
  const manifestText = await readRequired(manifestPath, 'prepared model manifest');
  let raw: unknown;
  try {
    raw = JSON.parse(manifestText.toString('utf8'));
  } catch (err) {
    throw new ModelPreparationError(`${manifestPath} is not valid JSON: ${reasonOf(err)}`, { cause: err });
  }
  const manifest = parseManifest(raw, manifestPath);

  const modelPath = join(root, MODEL_FILE);
  const model = await readRequired(modelPath, 'prepared model');
  checkModelAgainstManifest(model, manifest, modelPath);

  const slabPath = join(root, SLAB_FILE);
  const expectedBytes = manifest.slabLength * 4;
  let size: number;
  try {
    size = (await stat(slabPath)).size;
  } catch (err) {
    throw new ModelPreparationError(`base slab ${slabPath}: file not found`, { cause: err });
  }
  if (size !== expectedBytes) {
    throw new ModelPreparationError(
      `base slab ${slabPath} has ${size} bytes, but the manifest says ${manifest.slabLength} float32 values (${expectedBytes} bytes)`,
    );
  }
  const slab = await readSlab(slabPath, manifest.slabLength);
  const actual = slabSha256(slab);
  if (actual !== manifest.slabSha256) {
    throw new ModelPreparationError(
      `base slab ${slabPath} has sha256 ${actual}, but the manifest records ${manifest.slabSha256}: the slab was modified or corrupted`,
    );
  }
  return { model: new Uint8Array(model.buffer, model.byteOffset, model.byteLength), slab, manifest, warnings: [] };
}
