/**
 * One weight replica serving many virtual agents. In a synchronous round every agent holds the weights at the
 * same version, so a simulated fleet needs a replica per worker, not per agent: each virtual agent gets a
 * ReplicaView, a MezoBackend that tracks the agent's own version and forwards to the shared replica. The first
 * view to apply log entry v applies it to the weights; every other view only checks that its entry v is the
 * one the replica applied (same terms, same decay) and moves its own version on. A view may evaluate, run or
 * hash only at the replica's version; asked at an older one (a straggler whose round has moved on) it refuses
 * with StaleReplicaError, which the agent reports as a failed task — the coordinator would drop the late result
 * anyway. The agent code is the deployment's: only its backend is shared.
 */
import type { Estimator } from '../shared/optim/estimator.js';
import type { Manifest, RunResult } from '../shared/model/index.js';
import type { Distribution, Seed } from '../shared/noise/index.js';
import type { BatchData } from '../edge-agent/batch-feeds.js';
import type { SeedEvaluation, UpdateRule } from '../edge-agent/mezo-evaluator.js';
import type { DecayUpdate, MezoBackend, RecordDpEvaluation, RestoreMode } from '../edge-agent/mezo-backend.js';

export class StaleReplicaError extends Error {
  override name = 'StaleReplicaError';
}

/** A view applied an entry that differs from the one the replica applied at that version. */
export class ReplicaDivergenceError extends Error {
  override name = 'ReplicaDivergenceError';
}

/** What identifies an applied entry for the check: its terms and decay, exactly as applied. */
function entryKey(terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay: DecayUpdate | undefined): string {
  let key = decay ? `d${Math.fround(decay.factor)}` : '';
  for (const { seed, coeff } of terms) key += `|${BigInt(seed as bigint | number | string)}:${Math.fround(coeff)}`;
  return key;
}

export class SharedReplica {
  /** Entries applied to the weights (their version). */
  private applied = 0;
  /** entryKey of each applied entry, by version − 1. */
  private readonly keys: string[] = [];
  /** Weights SHA-256 at each version reached, for heartbeats of views that are not at the head. */
  private readonly shas: string[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private views = 0;

  private constructor(readonly backend: MezoBackend) {}

  /** Takes ownership of `backend`, whose weights must be the job's base (version 0). */
  static async create(backend: MezoBackend): Promise<SharedReplica> {
    const replica = new SharedReplica(backend);
    replica.shas.push(await backend.sha256());
    return replica;
  }

  get version(): number {
    return this.applied;
  }

  /** Views handed out. */
  get viewCount(): number {
    return this.views;
  }

  /** Runs `work` alone on the replica: evaluations and applies never interleave. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** A backend for one more virtual agent, starting at version 0. */
  view(): MezoBackend {
    this.views++;
    return new ReplicaView(this);
  }

  /** Brings the replica to `position + 1` with this entry, or checks it against the entry applied there. */
  async applyAt(position: number, terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay: DecayUpdate | undefined): Promise<void> {
    const key = entryKey(terms, decay);
    if (position < this.applied) {
      if (this.keys[position] !== key) {
        throw new ReplicaDivergenceError(`version ${position + 1}: the entry differs from the one the shared replica applied`);
      }
      return;
    }
    if (position > this.applied) {
      throw new StaleReplicaError(`a view at version ${position} is ahead of its replica (version ${this.applied})`);
    }
    await this.backend.apply(terms, decay);
    this.keys.push(key);
    this.applied++;
    this.shas.push(await this.backend.sha256());
  }

  shaAt(version: number): string {
    const sha = this.shas[version];
    if (sha === undefined) throw new StaleReplicaError(`the shared replica has not reached version ${version} (it is at ${this.applied})`);
    return sha;
  }

  close(): Promise<void> {
    return this.exclusive(() => this.backend.close());
  }
}

class ReplicaView implements MezoBackend {
  readonly manifest: Manifest;
  readonly distribution: Distribution;
  readonly rank: number | undefined;
  readonly restore: RestoreMode;
  /** The agent's version: entries it has applied through this view. */
  private position = 0;

  constructor(private readonly replica: SharedReplica) {
    this.manifest = replica.backend.manifest;
    this.distribution = replica.backend.distribution;
    this.rank = replica.backend.rank;
    this.restore = replica.backend.restore;
  }

  /** Runs `work` on the replica if it is at this view's version. */
  private atHead<T>(what: string, work: (backend: MezoBackend) => Promise<T>): Promise<T> {
    return this.replica.exclusive(() => {
      if (this.position !== this.replica.version) {
        return Promise.reject(new StaleReplicaError(`${what} at version ${this.position}: the shared replica has moved on to ${this.replica.version}`));
      }
      return work(this.replica.backend);
    });
  }

  evaluate(seeds: readonly Seed[], epsilon: number, batch: BatchData, fuse?: UpdateRule, recordDp?: RecordDpEvaluation, estimator?: Estimator): Promise<SeedEvaluation[]> {
    // A fused update would move the shared weights for one agent alone.
    if (fuse) return Promise.reject(new RangeError('evaluate: a shared replica cannot fuse updates into evaluation'));
    return this.atHead('evaluate', (backend) => backend.evaluate(seeds, epsilon, batch, undefined, recordDp, estimator));
  }

  apply(terms: ReadonlyArray<{ seed: Seed; coeff: number }>, decay?: DecayUpdate): Promise<void> {
    return this.replica.exclusive(async () => {
      await this.replica.applyAt(this.position, terms, decay);
      this.position++;
    });
  }

  run(batch: BatchData): Promise<RunResult> {
    return this.atHead('run', (backend) => backend.run(batch));
  }

  snapshot(): Promise<Float32Array> {
    return this.atHead('snapshot', (backend) => backend.snapshot());
  }

  async sha256(): Promise<string> {
    return this.replica.shaAt(this.position);
  }

  load(): Promise<void> {
    return Promise.reject(new RangeError('load: virtual agents share their replica; a simulation catches agents up by the log'));
  }

  /** The replica outlives its views; the simulation closes it. */
  async close(): Promise<void> {}
}
