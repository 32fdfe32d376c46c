/**
 * The agent's side of a secure-aggregation round (Bonawitz et al., CCS 2017; docs/privacy.md): for a Task that
 * carries a SecureAggregationSpec the agent
 *
 * 1. advertises two fresh X25519 public keys (one seals shares, one derives pairwise masks);
 * 2. on the roster of its neighbours, splits its self-mask seed and its masking private key into Shamir shares
 *    (threshold t) and sends each neighbour its pair sealed with AES-256-GCM under their pairwise key;
 * 3. once it holds its neighbours' sealed shares and its own values, sends its contribution (fixed point modulo
 *    2^64) plus its self mask plus a pairwise mask per neighbour that shared — never the values themselves;
 * 4. told which neighbours sent masked input and which dropped, reveals its shares of the survivors' self-mask
 *    seeds and of the dropped agents' masking keys — never both for one agent, and only once per round.
 *
 * State lives per session and per (round, attempt); a new task forgets the previous round's secrets.
 */
import type { KeyObject } from 'node:crypto';
import { logger } from '../shared/logger.js';
import { generateMaskingKeyPair, open, pairContext, publicKeyFromRaw, agree, seal, type MaskingKeyPair } from '../shared/privacy/masking.js';
import { FIELD_BYTES, FIELD_PRIME, bytesToField, fieldToBytes, randomFieldElement, split } from '../shared/privacy/shamir.js';
import { encodeContribution, maskContribution } from '../shared/privacy/secure-sum.js';
import type { AgentMessage, ClientSession, CoordinatorMessage, SecAggRoster, SecAggShares, SecAggUnmask, Task } from '../shared/transport/index.js';

/** The AAD of a sealed share: the pair's context and its direction. */
export const shareContext = (jobId: string, round: number, attempt: number, from: string, to: string): string =>
  `${pairContext(jobId, round, attempt, from, to)}\u0000${from}\u0000${to}`;

interface Peer {
  x: number;
  encryptionKey: KeyObject;
  maskingKey: KeyObject;
}

interface ClientRound {
  task: Task;
  encryption: MaskingKeyPair;
  masking: MaskingKeyPair;
  selfSeed: bigint;
  threshold: number | undefined;
  neighbours: Map<string, Peer> | undefined;
  /** The neighbours that shared with this agent, and their shares of (self-mask seed, masking key). */
  received: Map<string, { selfShare: bigint; keyShare: bigint }> | undefined;
  contribution: BigUint64Array | undefined;
  sentInput: boolean;
  revealed: boolean;
}

export class SecureAggregationError extends Error {
  override name = 'SecureAggregationError';
}

export class SecureAggregationClient {
  private current: ClientRound | undefined;

  constructor(
    readonly agentId: string,
    private readonly send: (message: AgentMessage) => void,
  ) {}

  /** Phase 1: fresh keys for this task's round; forgets any earlier round. */
  begin(task: Task): void {
    const round: ClientRound = {
      task,
      encryption: generateMaskingKeyPair(),
      masking: generateMaskingKeyPair(),
      selfSeed: randomFieldElement(),
      threshold: undefined,
      neighbours: undefined,
      received: undefined,
      contribution: undefined,
      sentInput: false,
      revealed: false,
    };
    this.current = round;
    this.send({ kind: 'secAggKeys', secAggKeys: { round: task.round, attempt: task.attempt, encryptionKey: round.encryption.publicRaw, maskingKey: round.masking.publicRaw } });
  }

  /** The agent's evaluated values for the task: sent masked once the neighbours' shares are in. */
  submit(task: Task, g: readonly number[], lossPlus: readonly number[], lossMinus: readonly number[], sampleCount: number): void {
    const round = this.roundOf(task.round, task.attempt);
    if (!round || !task.secureAggregation) return;
    round.contribution = encodeContribution(task.secureAggregation, g, lossPlus, lossMinus, sampleCount);
    this.sendInput(round);
  }

  /** Handles a secure-aggregation message; false for any other kind. A protocol fault drops the round (logged). */
  handle(message: CoordinatorMessage): boolean {
    try {
      switch (message.kind) {
        case 'secAggRoster':
          this.onRoster(message.secAggRoster);
          return true;
        case 'secAggSharesIn':
          this.onSharesIn(message.secAggSharesIn);
          return true;
        case 'secAggUnmask':
          this.onUnmask(message.secAggUnmask);
          return true;
        default:
          return false;
      }
    } catch (err) {
      // Whatever went wrong, the safe answer is silence: the coordinator counts this agent as dropped.
      logger.warn({ agent: this.agentId, err: (err as Error).message }, 'secure aggregation: dropped the round');
      this.current = undefined;
      return true;
    }
  }

  private roundOf(round: number, attempt: number): ClientRound | undefined {
    const current = this.current;
    return current && current.task.round === round && current.task.attempt === attempt ? current : undefined;
  }

  /** Phase 2: checks the roster, then shares both secrets among the neighbours it names. */
  private onRoster(roster: SecAggRoster): void {
    const round = this.roundOf(roster.round, roster.attempt);
    if (!round) return;
    if (round.neighbours) throw new SecureAggregationError('secAggRoster: a second roster for the round');
    const ids = new Set<string>();
    const xs = new Set<number>();
    let self: { x: number } | undefined;
    const neighbours = new Map<string, Peer>();
    for (const peer of roster.peers) {
      if (ids.has(peer.agentId) || xs.has(peer.x)) throw new SecureAggregationError(`secAggRoster.peers: ${peer.agentId} (x ${peer.x}) appears twice`);
      ids.add(peer.agentId);
      xs.add(peer.x);
      if (peer.agentId === this.agentId) {
        // The coordinator must relay this agent's own keys unchanged.
        if (!round.encryption.publicRaw.equals(peer.encryptionKey) || !round.masking.publicRaw.equals(peer.maskingKey)) {
          throw new SecureAggregationError('secAggRoster.peers: the keys given for this agent are not the ones it advertised');
        }
        self = { x: peer.x };
      } else {
        neighbours.set(peer.agentId, { x: peer.x, encryptionKey: publicKeyFromRaw(peer.encryptionKey), maskingKey: publicKeyFromRaw(peer.maskingKey) });
      }
    }
    if (!self) throw new SecureAggregationError('secAggRoster.peers: this agent is not listed');
    if (neighbours.size === 0) throw new SecureAggregationError('secAggRoster.peers: no neighbour; a sum of one would be the value itself');
    // More than half the holders must be needed, so no two disjoint groups of them can rebuild both of one agent's secrets.
    if (roster.threshold > neighbours.size || roster.threshold * 2 <= neighbours.size) {
      throw new SecureAggregationError(`secAggRoster.threshold: ${roster.threshold} is not above half of the ${neighbours.size} neighbours (and at most all of them)`);
    }
    round.threshold = roster.threshold;
    round.neighbours = neighbours;
    const order = [...neighbours.keys()].sort();
    const holderXs = order.map((id) => neighbours.get(id)!.x);
    const selfShares = split(round.selfSeed, roster.threshold, holderXs);
    const keyShares = split(round.masking.secret, roster.threshold, holderXs);
    const { round: r, attempt, jobId } = round.task;
    const shares: SecAggShares['shares'] = order.map((id, i) => ({
      agentId: id,
      data: seal(agree(round.encryption.privateKey, neighbours.get(id)!.encryptionKey), shareContext(jobId, r, attempt, this.agentId, id), Buffer.concat([fieldToBytes(selfShares[i]!.y), fieldToBytes(keyShares[i]!.y)])),
    }));
    this.send({ kind: 'secAggShares', secAggShares: { round: r, attempt, shares } });
  }

  /** The neighbours' sealed shares: opened and kept; the senders are whose masks the input includes. */
  private onSharesIn(message: SecAggShares): void {
    const round = this.roundOf(message.round, message.attempt);
    if (!round) return;
    if (!round.neighbours) throw new SecureAggregationError('secAggSharesIn: before the roster');
    if (round.received) throw new SecureAggregationError('secAggSharesIn: a second delivery for the round');
    const received = new Map<string, { selfShare: bigint; keyShare: bigint }>();
    const { round: r, attempt, jobId } = round.task;
    for (const item of message.shares) {
      const peer = round.neighbours.get(item.agentId);
      if (!peer) throw new SecureAggregationError(`secAggSharesIn.shares: ${item.agentId} is not a neighbour`);
      if (received.has(item.agentId)) throw new SecureAggregationError(`secAggSharesIn.shares: ${item.agentId} appears twice`);
      const plain = open(agree(round.encryption.privateKey, peer.encryptionKey), shareContext(jobId, r, attempt, item.agentId, this.agentId), item.data);
      if (plain.length !== 2 * FIELD_BYTES) throw new SecureAggregationError(`secAggSharesIn.shares: ${item.agentId}'s share is ${plain.length} bytes`);
      const selfShare = bytesToField(plain.subarray(0, FIELD_BYTES));
      const keyShare = bytesToField(plain.subarray(FIELD_BYTES));
      if (selfShare >= FIELD_PRIME || keyShare >= FIELD_PRIME) throw new SecureAggregationError(`secAggSharesIn.shares: ${item.agentId}'s share is not a field element`);
      received.set(item.agentId, { selfShare, keyShare });
    }
    round.received = received;
    this.sendInput(round);
  }

  /** Phase 3, once both the shares and the values are in. */
  private sendInput(round: ClientRound): void {
    if (!round.received || !round.contribution || round.sentInput || this.current !== round) return;
    round.sentInput = true;
    const peers = [...round.received.keys()].map((id) => ({ id, maskingKey: round.neighbours!.get(id)!.maskingKey }));
    const { round: r, attempt, jobId, seeds } = round.task;
    const masked = maskContribution(round.contribution, { id: this.agentId, selfSeed: round.selfSeed, masking: round.masking }, peers, { jobId, round: r, attempt });
    round.contribution = undefined;
    this.send({ kind: 'secAggMaskedInput', secAggMaskedInput: { round: r, attempt, seeds: [...seeds], words: [...masked] } });
  }

  /** Phase 4: reveals what the unmasking needs, once, after checking the split is consistent with what it knows. */
  private onUnmask(message: SecAggUnmask): void {
    const round = this.roundOf(message.round, message.attempt);
    if (!round) return;
    if (!round.sentInput || !round.received) throw new SecureAggregationError('secAggUnmask: before this agent sent its masked input');
    if (round.revealed) throw new SecureAggregationError('secAggUnmask: a second request for the round');
    round.revealed = true;
    const survivors = new Set(message.survivors);
    const dropped = new Set(message.dropped);
    if (survivors.size !== message.survivors.length || dropped.size !== message.dropped.length) throw new SecureAggregationError('secAggUnmask: an agent is listed twice');
    for (const id of survivors) if (dropped.has(id)) throw new SecureAggregationError(`secAggUnmask: ${id} is listed as survivor and as dropped`);
    // Every neighbour that shared is accounted for, and nobody else.
    if (survivors.size + dropped.size !== round.received.size || [...survivors, ...dropped].some((id) => !round.received!.has(id))) {
      throw new SecureAggregationError('secAggUnmask: survivors and dropped must be exactly the neighbours that shared');
    }
    // This agent survived too: fewer than t survivors would let the sum of a few reveal an individual value.
    if (survivors.size + 1 < round.threshold!) {
      throw new SecureAggregationError(`secAggUnmask: ${survivors.size + 1} survivors among this agent's neighbourhood, below the threshold ${round.threshold}`);
    }
    const reveal = (ids: Set<string>, which: 'selfShare' | 'keyShare') => [...ids].sort().map((id) => ({ agentId: id, data: fieldToBytes(round.received!.get(id)![which]) }));
    this.send({
      kind: 'secAggReveal',
      secAggReveal: { round: message.round, attempt: message.attempt, selfMaskShares: reveal(survivors, 'selfShare'), keyShares: reveal(dropped, 'keyShare') },
    });
    this.current = undefined;
  }
}

const clients = new WeakMap<ClientSession, SecureAggregationClient>();

/** The secure-aggregation state of one session (created on first use). */
export function secureAggregationClient(session: ClientSession, agentId: string): SecureAggregationClient {
  let client = clients.get(session);
  if (!client) {
    client = new SecureAggregationClient(agentId, (message) => session.send(message));
    clients.set(session, client);
  }
  return client;
}
