/**
 * The agent's chain follower: its weights as a position on the coordinator's hash chain (version and head
 * hash), the local log replica, and the checks every record passes before it touches the weights. Each entry
 * is checked with the one verifyEntry every log reader uses (shared/log/verify-entry.ts: signature under the
 * job's log key, then hash against contents), must chain onto the local head, and a rebase record must be what
 * the replica's own history sums to. Broadcast updates that fail are dropped, counted, and replaced by the log.
 */
import { CoefficientSums, LogVerifier, replayStep, replaySteps, UpdateLog, verifyEntry, type LogEntry, type ReplayStep } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import type { PreparedModel } from '../shared/model/index.js';
import type { Distribution } from '../shared/noise/index.js';
import { TransportError, type CoordinatorClient, type JoinAccepted } from '../shared/transport/index.js';
import type { MezoBackend } from './mezo-backend.js';

/** The agent's weights no longer follow the coordinator's chain: it must be reset, not reconnected. */
export class AgentStateError extends Error {
  override name = 'AgentStateError';
}

/** What the follower counts across jobs (the agent's state reports them). */
export interface FollowerStats {
  /** Broadcast updates dropped: not signed by the job's key, not matching their hash, or not chaining. */
  updatesRejected: number;
  /** When a rejected update last sent the agent to the log (performance.now()). */
  lastResyncAt: number;
}

/**
 * The verifier of the log key a Join presents. It must be the pinned key (AgentInit.logPublicKey), else the
 * key this job's Joins presented so far (`held`). A job whose log was unsigned may become signed (a coordinator
 * upgraded and restarted), never the reverse or another key.
 */
export function logVerifier(accepted: JoinAccepted, pinnedKey: string | undefined, held: string | undefined): LogVerifier | undefined {
  const presented = accepted.logPublicKey;
  const pinned = pinnedKey ?? held;
  if (pinned !== undefined && presented !== pinned) {
    throw new AgentStateError(`the coordinator presents the log key ${presented ?? '(none: an unsigned log)'}, not the pinned ${pinned}; refusing the job`);
  }
  return presented === undefined ? undefined : LogVerifier.for(presented);
}

/** One replay step (shared/log/replay.ts) on the backend: the base weights again for a rebase, the decay, the terms in one pass. */
async function applyToWeights(backend: MezoBackend, base: Float32Array, { entry, fromBase, decay }: ReplayStep, accepted: JoinAccepted): Promise<void> {
  if (fromBase) await backend.load(base);
  await backend.apply(entry.terms, decay === undefined ? undefined : { factor: decay, ranges: accepted.decayRanges });
}

/** What ChainFollower.open needs: the job as the coordinator announced it and where the agent keeps its state. */
export interface FollowerSetUp {
  agentId: string;
  accepted: JoinAccepted;
  client: CoordinatorClient;
  prepared: PreparedModel;
  createBackend: (distribution: Distribution, rank?: number) => Promise<MezoBackend>;
  /** The pinned log key (AgentInit.logPublicKey). */
  logPublicKey: string | undefined;
  stateDir: string | undefined;
  keepLogReplica: boolean | undefined;
}

export class ChainFollower {
  /**
   * The local log replica while it holds every entry the weights reflect (from genesis). Loading a snapshot
   * retires it: a stored file keeps its valid prefix, which a restart replays before catching up again.
   */
  replica: UpdateLog | undefined;
  /**
   * Per-seed coefficient sums since the last rebase (shared/log/compaction.ts), to check the next rebase record
   * before applying it. Unknown (undefined) after a snapshot until a rebase arrives.
   */
  sums: CoefficientSums | undefined;

  private constructor(
    private readonly agentId: string,
    /** The job's base model: its slab is what a rebase record starts from. */
    readonly prepared: PreparedModel,
    public accepted: JoinAccepted,
    readonly backend: MezoBackend,
    replica: UpdateLog | undefined,
    /** The weights' version and the hash of the entry at it (the genesis hash at 0). */
    public version: number,
    public headHash: string,
    sums: CoefficientSums | undefined,
    /** Checks entries against the job's log key; undefined when the coordinator does not sign its log. */
    public verifier: LogVerifier | undefined,
  ) {
    this.replica = replica;
    this.sums = sums;
  }

  /** A new job: build the backend and the log replica (replaying a stored one). */
  static async open(init: FollowerSetUp): Promise<ChainFollower> {
    const { accepted, client } = init;
    const verifier = logVerifier(accepted, init.logPublicKey, undefined);
    const header = {
      jobId: accepted.jobId,
      baseSha256: accepted.baseSha256,
      distribution: accepted.distribution,
      ...(accepted.rank !== undefined ? { rank: accepted.rank } : {}),
      decayRanges: accepted.decayRanges,
    };
    const replica = init.stateDir ? await UpdateLog.openIn(init.stateDir, `${accepted.jobId}.log`, header) : UpdateLog.inMemory(header);
    if (replica.genesisHash !== accepted.genesisHash) {
      await replica.close();
      throw new AgentStateError(`genesis hash mismatch: the coordinator says ${accepted.genesisHash}, the job header gives ${replica.genesisHash}`);
    }
    let replayable: UpdateLog | undefined = replica;
    if (replica.version > 0 && replica.version - 1 < accepted.logFloor) {
      // The coordinator no longer serves the entry that would prove this replica is on its chain; the agent
      // starts from the base and catches up by snapshot, leaving the stored file as it is.
      logger.info({ agent: init.agentId, replica: replica.version, floor: accepted.logFloor }, 'log replica older than the served log; not replayed');
      await replica.close();
      replayable = undefined;
    } else if (replica.version > 0) {
      // The stored replica must be a prefix of the coordinator's chain.
      const theirs = replica.version <= accepted.currentVersion
        ? (await client.fetchLog({ fromVersion: replica.version - 1, toVersion: replica.version })).entries[0]
        : undefined;
      if (!theirs || theirs.hash !== replica.headHash) {
        await replica.close();
        throw new AgentStateError(`the log replica in ${init.stateDir} (version ${replica.version}) is not part of the coordinator's chain`);
      }
    }
    const backend = await init.createBackend(accepted.distribution, accepted.rank);
    const baseSha = await backend.sha256();
    if (baseSha !== accepted.baseSha256) {
      await backend.close();
      await replica.close();
      throw new AgentStateError(`the backend's initial weights hash to ${baseSha}, the job's base is ${accepted.baseSha256}`);
    }
    const stored = replayable?.entries() ?? [];
    // Sums are kept only when the job compacts: otherwise they would grow with every new seed, without bound.
    const sums = (accepted.compactEvery ?? 0) > 0 ? new CoefficientSums() : undefined;
    for (const entry of stored) sums?.add(entry);
    for (const step of replaySteps(stored)) await applyToWeights(backend, init.prepared.slab, step, accepted);
    const follower = new ChainFollower(
      init.agentId,
      init.prepared,
      accepted,
      backend,
      init.stateDir === undefined && init.keepLogReplica === false ? undefined : replayable,
      replayable?.version ?? 0,
      replayable?.headHash ?? accepted.genesisHash,
      sums,
      verifier,
    );
    logger.info({ agent: init.agentId, jobId: accepted.jobId, version: follower.version }, 'agent set up');
    return follower;
  }

  /** Releases the model and the log replica. */
  async close(): Promise<void> {
    await this.backend.close();
    await this.replica?.close();
  }

  /** Why an entry is not the coordinator's own record (signature, then hash), or undefined when it is. */
  recordFault(entry: LogEntry): string | undefined {
    const fault = verifyEntry(entry, this.verifier);
    if (fault === undefined) return undefined;
    return `entry ${entry.version}: ${fault.kind === 'contents' ? fault.reason : `${fault.reason} (the job's key)`}`;
  }

  /** Fetches and applies entries until the weights are at `target` (or beyond). */
  async catchUp(client: CoordinatorClient, target: number): Promise<void> {
    while (this.version < target) {
      const from = this.version;
      const page = await client.fetchLog({ fromVersion: from, toVersion: target });
      if (page.entries.length === 0) throw new TransportError('DATA_LOSS', `fetchLog returned no entries after version ${from}`);
      for (const entry of page.entries) await this.applyEntry(entry);
    }
  }

  /** Verifies an entry against the local chain, applies it to the weights, then records it in the replica. */
  async applyEntry(entry: LogEntry): Promise<void> {
    const { backend, replica, accepted } = this;
    if (entry.version <= this.version) return; // already held
    if (entry.version !== this.version + 1) throw new TransportError('DATA_LOSS', `entry ${entry.version} does not follow version ${this.version}`);
    // From the log (broadcasts are checked before they get here): a bad record is the connection's fault.
    const fault = this.recordFault(entry);
    if (fault !== undefined) throw new TransportError('DATA_LOSS', `fetchLog: ${fault}`);
    if (entry.prevHash !== this.headHash) {
      throw new AgentStateError(`update ${entry.version}: prevHash ${entry.prevHash.slice(0, 12)}… does not match the local head ${this.headHash.slice(0, 12)}…`);
    }
    const { hash } = entry;
    if (entry.kind === 'rebase') {
      // The record must be what this replica's own history sums to (known unless a snapshot came since).
      const wrong = this.sums?.mismatch(entry);
      if (wrong !== undefined) throw new AgentStateError(`rebase ${entry.version} does not follow from the entries before it: ${wrong}`);
    }
    await applyToWeights(backend, this.prepared.slab, replayStep(entry), accepted);
    this.version = entry.version;
    this.headHash = hash;
    if (this.sums) this.sums.add(entry);
    else if (entry.kind === 'rebase' && (accepted.compactEvery ?? 0) > 0) this.sums = CoefficientSums.startingAt(entry);
    if (replica) {
      const signature = entry.signature === undefined ? {} : { signature: entry.signature };
      const stored = entry.kind === 'rebase'
        ? await replica.appendRebase({ round: entry.round, terms: entry.terms, ...signature })
        : await replica.append({ round: entry.round, lr: entry.lr, decay: entry.decay, terms: entry.terms, ...signature });
      if (stored.hash !== hash) throw new AgentStateError(`update ${entry.version}: replica hash ${stored.hash} differs from ${hash}`);
    }
  }

  /**
   * A broadcast update whose record already passed recordFault: the entries before it are fetched when it
   * skips ahead, and it is applied when it chains onto these weights (rejected otherwise).
   */
  async follow(client: CoordinatorClient, update: LogEntry, stats: FollowerStats): Promise<void> {
    if (update.version > this.version + 1) await this.catchUp(client, update.version - 1);
    if (update.version === this.version + 1 && update.prevHash !== this.headHash) {
      return this.rejectUpdate(client, update, `entry ${update.version}: prevHash ${update.prevHash.slice(0, 12)}… does not match the local head`, stats);
    }
    await this.applyEntry(update);
  }

  /**
   * A broadcast update that is not the coordinator's (recordFault) or does not chain onto these weights: it is
   * dropped and counted, and the log says what comes next.
   */
  async rejectUpdate(client: CoordinatorClient, update: LogEntry, reason: string, stats: FollowerStats): Promise<void> {
    stats.updatesRejected++;
    // A flood of forgeries must not become a flood of FetchLog calls on the coordinator: one per heartbeat period.
    const now = performance.now();
    if (now - stats.lastResyncAt < (this.accepted.heartbeatMs || 2000)) return;
    stats.lastResyncAt = now;
    logger.warn({ agent: this.agentId, version: update.version, reason }, 'dropped a bad update; fetching the log instead');
    for (;;) {
      const page = await client.fetchLog({ fromVersion: this.version, toVersion: 0 });
      for (const entry of page.entries) await this.applyEntry(entry);
      if (page.entries.length === 0 || this.version >= page.headVersion) return;
    }
  }

  /**
   * The log path from behind the last rebase record starts at the record: its own hash is checked, but the
   * entry it chains to is never seen, so, like a snapshot, it is taken on the coordinator's word (heartbeats
   * then audit the weights). Later entries chain from it as usual, and later rebases are checked against the
   * sums that start here. The log replica retires, as after a snapshot.
   */
  async jumpToRebase(client: CoordinatorClient, version: number): Promise<void> {
    const rebase = (await client.fetchLog({ fromVersion: version - 1, toVersion: version })).entries[0];
    if (!rebase || rebase.version !== version || rebase.kind !== 'rebase') {
      throw new TransportError('DATA_LOSS', `fetchLog: entry ${version} is not the rebase record the coordinator announced`);
    }
    const fault = this.recordFault(rebase);
    if (fault !== undefined) throw new TransportError('DATA_LOSS', `rebase ${fault}`);
    const { hash } = rebase;
    await applyToWeights(this.backend, this.prepared.slab, replayStep(rebase), this.accepted);
    await this.replica?.close();
    this.replica = undefined;
    this.sums = CoefficientSums.startingAt(rebase);
    this.version = version;
    this.headHash = hash;
    logger.info({ agent: this.agentId, version, seeds: rebase.terms.length }, 'caught up from a rebase record');
  }

  /**
   * Moves the weights to a snapshot already checked and loaded into the backend: the snapshot's version and
   * the entry it continues from become the head; the replica retires and the rebase sums are unknown again.
   */
  async adoptSnapshot(version: number, entryHash: string): Promise<void> {
    await this.replica?.close();
    this.replica = undefined;
    this.sums = undefined;
    this.version = version;
    this.headHash = entryHash;
  }
}
