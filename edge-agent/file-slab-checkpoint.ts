/**
 * The checkpoint on local storage (Node only; slab-checkpoint.ts says why replicas reload): it holds the
 * canonical weights in a file, not in the process, so it costs a read per restore and a write per update (from
 * the page cache while memory allows), and no resident memory of its own.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { SlabCheckpoint } from './slab-checkpoint.js';

const bytesOf = (slab: Float32Array): Uint8Array => new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength);

export class FileSlabCheckpoint implements SlabCheckpoint {
  private fd: number | undefined;
  private readonly length: number;
  private readonly ownedDirectory: string | undefined;

  /** A checkpoint file at `path` (created or truncated), or in a private temporary folder when path is omitted. */
  constructor(length: number, path?: string) {
    this.length = length;
    if (path === undefined) {
      this.ownedDirectory = mkdtempSync(join(tmpdir(), 'mezo-checkpoint-'));
      path = join(this.ownedDirectory, 'canonical.slab');
    }
    this.fd = openSync(path, 'w+');
    this.path = path;
  }

  readonly path: string;

  private check(slab: Float32Array, method: string): number {
    if (this.fd === undefined) throw new Error(`${method}: the checkpoint ${this.path} is closed`);
    if (slab.length !== this.length) throw new RangeError(`${method}: slab has ${slab.length} values, the checkpoint ${this.length}`);
    return this.fd;
  }

  save(slab: Float32Array): void {
    const fd = this.check(slab, 'save');
    const bytes = bytesOf(slab);
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, done);
  }

  restore(slab: Float32Array): void {
    const fd = this.check(slab, 'restore');
    const bytes = bytesOf(slab);
    for (let done = 0; done < bytes.length; ) {
      const read = readSync(fd, bytes, done, bytes.length - done, done);
      if (read === 0) throw new Error(`restore: the checkpoint ${this.path} is shorter than the slab (${done} of ${bytes.length} bytes)`);
      done += read;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    if (this.ownedDirectory) rmSync(this.ownedDirectory, { recursive: true, force: true });
  }

  /** The folder the checkpoint file lives in. */
  get directory(): string {
    return dirname(this.path);
  }
}
