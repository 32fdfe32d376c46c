/**
 * The coordinator's side of secure aggregation (Bonawitz et al., CCS 2017; SecAgg+ neighbour graphs, Bell et
 * al. 2020; docs/privacy.md, "Secure aggregation"). A secure round replaces "collect Results" with four phases,
 * each closing when every agent still expected has answered, has gone, or the phase deadline passes:
 *
 * 1. keys: the assigned agents advertise two X25519 public keys (U1: those that did);
 * 2. shares: each agent of U1 receives the keys of its neighbours in U1 and the threshold t, and sends each
 *    neighbour Shamir shares of its self-mask seed and masking key, sealed for that neighbour (U2: those that
 *    did); the coordinator relays to each agent of U2 the sealed shares its neighbours in U2 sent it;
 * 3. masked input: each agent of U2 sends its fixed-point contribution plus masks (U3: those that did);
 * 4. unmasking: each agent of U3 is told which of its neighbours survived (U3) and which dropped (U2 \ U3) and
 *    reveals its shares of the survivors' self-mask seeds and of the dropped agents' masking keys.
 *
 * With t shares for every secret the coordinator removes the self masks of U3 and the masks the survivors
 * share with dropped agents: what is left is the plain sum of the survivors' contributions, modulo 2^64, bit
 * for bit. Anything short of that — fewer than t shares for one secret, a rebuilt key that does not match its
 * advertised public key, fewer survivors than the quorum — fails the attempt (and the round is retried with
 * fresh seeds), never a wrong sum.
 *
 * The strategy side: only strategies that aggregate by sums qualify. MezoStrategy with shared seeds and the
 * (sample-weighted) mean, and CentralDpStrategy over shared seeds (noise added to the unmasked sum); the robust
 * aggregators and distinct or pool seeds need per-agent values and are refused with an error naming the option.
 */
import { z } from 'zod';
import type { KeyObject } from 'node:crypto';
import { logger } from '../shared/logger.js';
import { addWords, agree, privateKeyFromSecret, publicKeyFromRaw, publicRawOf, prgWords, pairContext } from '../shared/privacy/masking.js';
import { bytesToField, FIELD_PRIME, reconstruct, type Share } from '../shared/privacy/shamir.js';
import { contributionLength, decodeSums, neighbourGraph, pairSign, selfMask, thresholdFor } from '../shared/privacy/secure-sum.js';
import type { AgentMessage, CoordinatorMessage, SecureAggregationSpec } from '../shared/transport/index.js';
import { CentralDpStrategy } from './dp-strategy.js';
import { MezoStrategy, type AggregatedUpdate, type RoundContext, type RoundFailure, type Strategy } from './strategy.js';

export const secureAggregationOptionsSchema = z.strictObject({
  /** The object's presence turns secure aggregation on; false keeps a configured one off (--secure-aggregation sets true). */
  enabled: z.boolean().default(true),
  /**
   * θ: a secret is rebuilt from ⌈θ · holders⌉ shares, holders being the agent's neighbours. Above 1/2, so two
   * disjoint groups can never rebuild both secrets of one agent; the round survives up to (1 − θ) of each
   * neighbourhood dropping out.
   */
  threshold: z.number().gt(0.5).max(1).default(2 / 3),
  /** k: neighbours per agent (SecAgg+ k-regular graph); 0: every other participant (the complete graph). */
  neighbours: z.number().int().min(0).max(100_000).default(0),
});
export type SecureAggregationOptions = z.output<typeof secureAggregationOptionsSchema>;
export type SecureAggregationOptionsInput = z.input<typeof secureAggregationOptionsSchema>;

/** A combination secure aggregation cannot serve, naming the option at fault. */
export class SecureAggregationConfigError extends Error {
  override name = 'SecureAggregationConfigError';
}

/** What the unmasked sum holds: per seed Σ w·g, Σ w, Σ ℓ, over `contributors` agents. */
export interface SecureSums {
  seeds: readonly bigint[];
  gSums: readonly number[];
  weightSum: number;
  lossSum: number;
  contributors: number;
}

/** How a strategy takes part: what each agent encodes, and the update from the sums. */
export interface SecureAggregationTarget {
  weighted: boolean;
  clipAbs?: number;
  clipL2?: number;
  /**
   * The update the sum makes; null when nothing usable. `failures`: the agents asked in this attempt whose
   * masked input is not in the sum, and why (Strategy.aggregate's failures).
   */
  aggregate(context: RoundContext, sums: SecureSums, failures: readonly RoundFailure[]): AggregatedUpdate | null;
}

/** A custom strategy that aggregates by sums implements this to run with secure aggregation. */
export interface SecureSumStrategy extends Strategy {
  secureAggregationTarget(): SecureAggregationTarget;
}

function checkSharedMean(strategy: MezoStrategy): void {
  const { seedMode, aggregation } = strategy.config;
  if (aggregation !== 'mean') {
    throw new SecureAggregationConfigError(`secureAggregation: strategy.aggregation '${aggregation}' needs each agent's own values (it ranks them); secure aggregation reveals only their sum: use 'mean'`);
  }
  if (seedMode !== 'shared') {
    throw new SecureAggregationConfigError(`secureAggregation: strategy.seedMode '${seedMode}' gives seeds to single agents (or varying subsets), so a seed's sum would be one agent's value: use 'shared'`);
  }
}

/** The strategy's secure-aggregation side, or a SecureAggregationConfigError naming what does not combine. */
export function secureAggregationTarget(strategy: Strategy): SecureAggregationTarget {
  if (strategy instanceof CentralDpStrategy) {
    checkSharedMean(strategy.inner);
    return {
      weighted: false,
      clipL2: strategy.config.clip,
      // The wrapper clips each answer to L2 norm C and sums: the sum S handed over as m equal pieces of norm
      // ≤ C passes its clip untouched, so the release is S plus the wrapper's noise (up to rounding in S/m·m).
      aggregate: (context, sums, failures) => {
        const norm = Math.sqrt(sums.gSums.reduce((a, x) => a + x * x, 0));
        const pieces = Math.max(1, Math.ceil(norm / strategy.config.clip));
        const loss = sums.lossSum / sums.contributors;
        const piece = {
          seeds: sums.seeds,
          g: sums.gSums.map((s) => s / pieces),
          lossPlus: sums.seeds.map(() => loss),
          lossMinus: sums.seeds.map(() => loss),
          sampleCount: 1,
        };
        // Through the Strategy interface: a subclass may read the failures its class signature leaves out.
        return (strategy as Strategy).aggregate(context, Array.from({ length: pieces }, (_, i) => ({ agentId: `secure-sum-${i}`, ...piece })), failures);
      },
    };
  }
  if (strategy instanceof MezoStrategy) {
    checkSharedMean(strategy);
    return {
      weighted: true,
      ...(strategy.config.clip !== undefined ? { clipAbs: strategy.config.clip } : {}),
      // The weighted mean of clipped values is the sum's ratio; handing it over as one answer of weight 1 lets
      // the strategy apply its schedule, decay and any state it keeps exactly as for plain answers.
      aggregate: (context, sums, failures) => {
        if (!(sums.weightSum > 0)) return null;
        const loss = sums.lossSum / sums.contributors;
        const sum = {
          agentId: 'secure-sum',
          seeds: sums.seeds,
          g: sums.gSums.map((s) => s / sums.weightSum),
          lossPlus: sums.seeds.map(() => loss),
          lossMinus: sums.seeds.map(() => loss),
          sampleCount: 1,
        };
        // Through the Strategy interface: a subclass may read the failures its class signature leaves out.
        return (strategy as Strategy).aggregate(context, [sum], failures);
      },
    };
  }
  const custom = strategy as Partial<SecureSumStrategy>;
  if (typeof custom.secureAggregationTarget === 'function') return custom.secureAggregationTarget();
  throw new SecureAggregationConfigError('secureAggregation: the strategy does not aggregate by sums (implement secureAggregationTarget)');
}

export type SecureRoundOutcome =
  | { ok: true; sums: SecureSums; /** The unmasked sum modulo 2^64. */ words: BigUint64Array; survivors: string[]; dropped: string[] }
  | { ok: false; reason: string; stopped: boolean };

type Phase = 'keys' | 'shares' | 'masked' | 'reveal';

interface Participant {
  encryptionKey: Uint8Array;
  maskingKey: Uint8Array;
  maskingPublic?: KeyObject;
  x: number;
}

export interface SecureRoundInit {
  jobId: string;
  round: number;
  attempt: number;
  seeds: readonly bigint[];
  assigned: readonly string[];
  quorum: number;
  spec: SecureAggregationSpec;
  options: SecureAggregationOptions;
  /** Seeds the neighbour graph's order (with round and attempt). */
  graphSeed: number | string;
  phaseMs: number;
  send(agentId: string, message: CoordinatorMessage): boolean;
}

/** One attempt of a secure round: a state machine fed by handle() and drop(), driven by run(). */
export class SecureRound {
  private phase: Phase = 'keys';
  private expected = new Set<string>();
  private readonly gone = new Set<string>();
  private readonly keys = new Map<string, Participant>();
  private graph = new Map<string, string[]>();
  private threshold = 1;
  private readonly sealed = new Map<string, Map<string, Uint8Array>>();
  private readonly inputs = new Map<string, BigUint64Array>();
  private readonly reveals = new Map<string, { selfMask: Map<string, Uint8Array>; keys: Map<string, Uint8Array> }>();
  private wake: (() => void) | undefined;
  private stopped = false;
  /** Bytes of every agent message the round accepted, for the bench (secure vs plain). */
  messages = 0;

  constructor(private readonly init: SecureRoundInit) {
    // The key phase is open from the start: agents advertise keys as soon as their task arrives.
    this.expected = new Set(init.assigned);
  }

  get round(): number {
    return this.init.round;
  }

  get attempt(): number {
    return this.init.attempt;
  }

  /** Whether `message` is an answer this round is waiting for from `agentId` (it then costs no rate budget). */
  expects(agentId: string, message: AgentMessage): boolean {
    const body = secureBody(message);
    if (!body || body.round !== this.init.round || body.attempt !== this.init.attempt || !this.expected.has(agentId)) return false;
    return PHASE_OF[message.kind as keyof typeof PHASE_OF] === this.phase;
  }

  /** Whether drop() took the agent out of this attempt (it declined, disconnected, or a phase's message to it could not be sent). */
  wasDropped(agentId: string): boolean {
    return this.gone.has(agentId);
  }

  /** An agent declined, disconnected or could not be sent to: no phase waits for it any more. */
  drop(agentId: string): void {
    if (!this.init.assigned.includes(agentId)) return;
    this.gone.add(agentId);
    if (this.expected.delete(agentId)) this.poke();
  }

  abort(): void {
    this.stopped = true;
    this.poke();
  }

  /**
   * Takes one secure-aggregation message; returns why it was refused (for the rejection count), 'late' for an
   * answer to another attempt or a closed phase, or undefined when it was taken.
   */
  handle(agentId: string, message: AgentMessage): string | undefined {
    const body = secureBody(message);
    if (!body) return undefined;
    if (body.round !== this.init.round || body.attempt !== this.init.attempt) return 'late';
    if (!this.init.assigned.includes(agentId)) return `${message.kind}: this agent is not in round ${body.round}`;
    if (PHASE_OF[message.kind as keyof typeof PHASE_OF] !== this.phase || !this.expected.has(agentId)) return 'late';
    switch (message.kind) {
      case 'secAggKeys': {
        const { encryptionKey, maskingKey } = message.secAggKeys;
        try {
          publicKeyFromRaw(encryptionKey);
          publicKeyFromRaw(maskingKey);
        } catch (err) {
          return `secAggKeys: ${(err as Error).message}`;
        }
        this.keys.set(agentId, { encryptionKey, maskingKey, x: 0 });
        break;
      }
      case 'secAggShares': {
        const neighbours = this.graph.get(agentId)!;
        const items = message.secAggShares.shares;
        const byRecipient = new Map(items.map((i) => [i.agentId, i.data]));
        if (byRecipient.size !== items.length || items.length !== neighbours.length || neighbours.some((n) => !byRecipient.has(n))) {
          return 'secAggShares.shares: must hold one sealed share for each neighbour in the roster';
        }
        this.sealed.set(agentId, byRecipient);
        break;
      }
      case 'secAggMaskedInput': {
        const m = message.secAggMaskedInput;
        if (m.seeds.length !== this.init.seeds.length || m.seeds.some((s, i) => s !== this.init.seeds[i])) return 'secAggMaskedInput.seeds: differ from the seeds assigned';
        this.inputs.set(agentId, BigUint64Array.from(m.words));
        break;
      }
      case 'secAggReveal': {
        const { selfMaskShares, keyShares } = message.secAggReveal;
        const neighbours = new Set(this.graph.get(agentId));
        const survivors = new Set([...this.inputs.keys()]);
        const toMap = (items: ReadonlyArray<{ agentId: string; data: Uint8Array }>, wantSurvivor: boolean): Map<string, Uint8Array> | string => {
          const map = new Map<string, Uint8Array>();
          for (const item of items) {
            if (!neighbours.has(item.agentId) || survivors.has(item.agentId) !== wantSurvivor || map.has(item.agentId) || !this.sealed.has(item.agentId)) {
              return `secAggReveal: a share of ${item.agentId} was not asked for`;
            }
            if (item.data.length !== 32 || bytesToField(item.data) >= FIELD_PRIME) return `secAggReveal: the share of ${item.agentId} is not a field element`;
            map.set(item.agentId, item.data);
          }
          return map;
        };
        const selfMask = toMap(selfMaskShares, true);
        if (typeof selfMask === 'string') return selfMask;
        const keys = toMap(keyShares, false);
        if (typeof keys === 'string') return keys;
        this.reveals.set(agentId, { selfMask, keys });
        break;
      }
      default:
        return undefined;
    }
    this.messages++;
    this.expected.delete(agentId);
    this.poke();
    return undefined;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Opens a phase before its messages go out, so that an answer cannot arrive before the phase does. */
  private openPhase(phase: Phase, expected: Iterable<string>): void {
    this.phase = phase;
    this.expected = new Set([...expected].filter((id) => !this.gone.has(id)));
  }

  /** Waits until nobody expected is left, the deadline passes, or the round is aborted. */
  private async waitPhase(): Promise<void> {
    const deadline = Date.now() + this.init.phaseMs;
    while (this.expected.size > 0 && !this.stopped) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.wake = undefined;
    this.expected.clear();
  }

  private fail(reason: string): SecureRoundOutcome {
    return { ok: false, reason, stopped: this.stopped };
  }

  /** Runs phases 1–4 and unmasks (the tasks are already sent). */
  async run(): Promise<SecureRoundOutcome> {
    const { round, attempt, quorum, options } = this.init;
    const need = Math.max(2, quorum);
    // 1. keys (the phase opened with the round)
    await this.waitPhase();
    if (this.stopped) return this.fail('stopped');
    const u1 = [...this.keys.keys()].filter((id) => !this.gone.has(id)).sort();
    if (u1.length < need) return this.fail(`${u1.length} agents advertised keys, ${need} needed`);
    u1.forEach((id, i) => (this.keys.get(id)!.x = i + 1));
    this.graph = neighbourGraph(u1, options.neighbours, this.init.graphSeed, round, attempt);
    const degree = Math.min(...u1.map((id) => this.graph.get(id)!.length));
    this.threshold = thresholdFor(degree, options.threshold);
    this.openPhase('shares', u1);
    for (const id of u1) {
      const peers = [id, ...this.graph.get(id)!].map((peer) => {
        const k = this.keys.get(peer)!;
        return { agentId: peer, x: k.x, encryptionKey: k.encryptionKey, maskingKey: k.maskingKey };
      });
      if (!this.init.send(id, { kind: 'secAggRoster', secAggRoster: { round, attempt, threshold: this.threshold, peers } })) this.drop(id);
    }
    // 2. shares
    await this.waitPhase();
    if (this.stopped) return this.fail('stopped');
    const u2 = u1.filter((id) => this.sealed.has(id) && !this.gone.has(id));
    if (u2.length < need) return this.fail(`${u2.length} agents shared their keys, ${need} needed`);
    const inU2 = new Set(u2);
    this.openPhase('masked', u2);
    for (const id of u2) {
      const shares = this.graph.get(id)!.filter((from) => inU2.has(from)).map((from) => ({ agentId: from, data: this.sealed.get(from)!.get(id)! }));
      if (!this.init.send(id, { kind: 'secAggSharesIn', secAggSharesIn: { round, attempt, shares } })) this.drop(id);
    }
    // 3. masked input
    await this.waitPhase();
    if (this.stopped) return this.fail('stopped');
    const u3 = u2.filter((id) => this.inputs.has(id));
    const dropped = u2.filter((id) => !this.inputs.has(id));
    if (u3.length < need) return this.fail(`${u3.length} agents sent masked input, ${need} needed`);
    const inU3 = new Set(u3);
    this.openPhase('reveal', u3);
    for (const id of u3) {
      const neighbours = this.graph.get(id)!.filter((v) => inU2.has(v));
      const unmask = { round, attempt, survivors: neighbours.filter((v) => inU3.has(v)), dropped: neighbours.filter((v) => !inU3.has(v)) };
      if (!this.init.send(id, { kind: 'secAggUnmask', secAggUnmask: unmask })) this.drop(id);
    }
    // 4. unmasking
    await this.waitPhase();
    if (this.stopped) return this.fail('stopped');
    try {
      const sum = this.unmask(u3, dropped);
      const decoded = decodeSums(this.init.spec, sum);
      return { ok: true, sums: { seeds: this.init.seeds, ...decoded, contributors: u3.length }, words: sum, survivors: u3, dropped };
    } catch (err) {
      return this.fail((err as Error).message);
    }
  }

  /** The shares of `owner`'s secret that its neighbours revealed, as Shamir points. */
  private sharesOf(owner: string, which: 'selfMask' | 'keys'): Share[] {
    const shares: Share[] = [];
    for (const holder of this.graph.get(owner)!) {
      const data = this.reveals.get(holder)?.[which].get(owner);
      if (data) shares.push({ x: this.keys.get(holder)!.x, y: bytesToField(data) });
    }
    if (shares.length < this.threshold) {
      throw new Error(`below threshold: ${shares.length} shares of ${owner}'s ${which === 'selfMask' ? 'self-mask seed' : 'masking key'} revealed, ${this.threshold} needed`);
    }
    return shares;
  }

  private unmask(survivors: readonly string[], dropped: readonly string[]): BigUint64Array {
    const { jobId, round, attempt } = this.init;
    const length = contributionLength(this.init.seeds.length);
    const sum = new BigUint64Array(length);
    for (const id of survivors) {
      const input = this.inputs.get(id)!;
      if (input.length !== length) throw new Error(`${id}'s masked input has ${input.length} words, ${length} expected`);
      addWords(sum, input);
    }
    for (const id of survivors) {
      const seed = reconstruct(this.sharesOf(id, 'selfMask'), this.threshold);
      addWords(sum, selfMask(seed, jobId, round, attempt, id, length), -1);
    }
    const inSurvivors = new Set(survivors);
    for (const v of dropped) {
      const secret = reconstruct(this.sharesOf(v, 'keys'), this.threshold);
      const privateKey = privateKeyFromSecret(secret);
      // The rebuilt key must be the one v advertised: shares that do not add up fail the round, not the sum.
      if (!publicRawOf(privateKey).equals(this.keys.get(v)!.maskingKey)) throw new Error(`the rebuilt masking key of ${v} does not match its public key`);
      for (const u of this.graph.get(v)!) {
        if (!inSurvivors.has(u)) continue;
        const participant = this.keys.get(u)!;
        participant.maskingPublic ??= publicKeyFromRaw(participant.maskingKey);
        const mask = prgWords(agree(privateKey, participant.maskingPublic), 'pair-mask', pairContext(jobId, round, attempt, u, v), length);
        // u added sign(u, v) · mask; take it out.
        addWords(sum, mask, pairSign(u, v) === 1 ? -1 : 1);
      }
    }
    logger.debug({ round, attempt, survivors: survivors.length, dropped: dropped.length }, 'secure aggregation: unmasked the sum');
    return sum;
  }
}

const PHASE_OF = { secAggKeys: 'keys', secAggShares: 'shares', secAggMaskedInput: 'masked', secAggReveal: 'reveal' } as const;

function secureBody(message: AgentMessage): { round: number; attempt: number } | undefined {
  switch (message.kind) {
    case 'secAggKeys':
      return message.secAggKeys;
    case 'secAggShares':
      return message.secAggShares;
    case 'secAggMaskedInput':
      return message.secAggMaskedInput;
    case 'secAggReveal':
      return message.secAggReveal;
    default:
      return undefined;
  }
}

/** Whether the message belongs to secure aggregation (the coordinator routes it to the open SecureRound). */
export const isSecureAggregationMessage = (message: AgentMessage): boolean => secureBody(message) !== undefined;
