/**
 * Where an agent keeps its canonical weights while it evaluates perturbations. In float32, θ + εz − 2εz + εz
 * is not θ again for about half of the elements (docs/noise.md, "Drift"), so a replica that restores by
 * subtraction drifts from base + log by last-bit roundings. Restoring by reloading the canonical weights
 * instead keeps every replica bit-identical to base + log, which is what lets replicas be audited by hash.
 *
 * A checkpoint in memory lives here; the one on local storage (file-slab-checkpoint.ts) is a Node adapter, kept
 * apart so that this module, and the in-process backend that uses it, load no Node built-in (a browser agent).
 */
export interface SlabCheckpoint {
  /** Records `slab` as the canonical weights. */
  save(slab: Float32Array): void;
  /** Overwrites `slab` with the canonical weights. */
  restore(slab: Float32Array): void;
  close(): void;
}

/** A copy in memory: doubles the weights' memory, so for simulation workers and tests, not for devices. */
export class MemorySlabCheckpoint implements SlabCheckpoint {
  private copy: Float32Array | undefined;

  save(slab: Float32Array): void {
    if (this.copy === undefined || this.copy.length !== slab.length) this.copy = new Float32Array(slab.length);
    this.copy.set(slab);
  }

  restore(slab: Float32Array): void {
    if (this.copy === undefined || this.copy.length !== slab.length) throw new RangeError('restore: nothing of this size was saved');
    slab.set(this.copy);
  }

  close(): void {
    this.copy = undefined;
  }
}
