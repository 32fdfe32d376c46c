import { describe, expect, it } from 'vitest';
import { SecureRound, secureAggregationOptionsSchema, secureAggregationTarget, type SecureRoundOutcome } from '../../../coordinator/secure-aggregation.js';
import { CentralDpStrategy } from '../../../coordinator/dp-strategy.js';
import { MezoStrategy } from '../../../coordinator/strategy.js';
import { SecureAggregationClient } from '../../../edge-agent/secure-aggregation-client.js';
import { addWords, decodeFixed, encodeFixed, open, seal } from '../../../shared/privacy/masking.js';
import { FIELD_PRIME, ShamirError, randomFieldElement, reconstruct, split } from '../../../shared/privacy/shamir.js';
import { encodeContribution, neighbourGraph, scaleLog2For, secureSpec, thresholdFor } from '../../../shared/privacy/secure-sum.js';
import type { AgentMessage, SecureAggregationSpec, Task } from '../../../shared/transport/index.js';
import { SeededRng } from '../../../shared/data/rng.js';

describe('Shamir sharing over GF(2^255 − 19)', () => {
  it('any threshold of the shares rebuilds the secret', () => {
    const secret = randomFieldElement();
    const xs = [1, 2, 3, 4, 5, 6, 7];
    const shares = split(secret, 4, xs);
    expect(reconstruct(shares.slice(0, 4), 4)).toBe(secret);
    expect(reconstruct([shares[6]!, shares[2]!, shares[4]!, shares[0]!], 4)).toBe(secret);
    expect(reconstruct(shares.slice(3), 4)).toBe(secret);
    // The secret's extremes are field elements too.
    expect(reconstruct(split(0n, 3, xs), 3)).toBe(0n);
    expect(reconstruct(split(FIELD_PRIME - 1n, 3, xs).slice(4), 3)).toBe(FIELD_PRIME - 1n);
  });

  it('fewer shares than the threshold refuse to rebuild, and do not pin the secret down', () => {
    const secret = randomFieldElement();
    const shares = split(secret, 3, [1, 2, 3, 4]);
    expect(() => reconstruct(shares.slice(0, 2), 3)).toThrow(ShamirError);
    // Two shares at threshold 2 interpolate a line; they give a different "secret" than the degree-2 polynomial's.
    expect(reconstruct(shares.slice(0, 2), 2)).not.toBe(secret);
    // Sharing the same secret twice gives different shares (random coefficients).
    expect(split(secret, 3, [1, 2, 3])[0]!.y).not.toBe(shares[0]!.y);
  });

  it('refuses bad inputs naming them', () => {
    expect(() => split(FIELD_PRIME, 2, [1, 2])).toThrow(/field element/);
    expect(() => split(1n, 3, [1, 2])).toThrow(/exceeds the 2 share holders/);
    expect(() => split(1n, 2, [1, 1])).toThrow(/appears twice/);
    expect(() => split(1n, 2, [0, 1])).toThrow(/positive integers/);
    const shares = split(5n, 2, [1, 2, 3]);
    expect(() => reconstruct([shares[0]!, { ...shares[1]!, x: 1 }], 2)).toThrow(/appears twice/);
  });
});

describe('masking primitives', () => {
  it('fixed point modulo 2^64 sums negative and positive values exactly', () => {
    const values = [1.5, -2.25, 1e-3, -7];
    const sum = new BigUint64Array(1);
    for (const v of values) addWords(sum, BigUint64Array.of(encodeFixed(v, 20)));
    const plain = values.reduce((a, v) => a + Math.round(v * 2 ** 20), 0);
    expect(decodeFixed(sum[0]!, 20)).toBe(plain / 2 ** 20);
    expect(() => encodeFixed(2 ** 40, 30)).toThrow(/exceeds 2\^62/);
  });

  it('the scale keeps n values at the bound below 2^61', () => {
    const s = scaleLog2For(1e6, 1000);
    expect(1000 * (1e6 * 2 ** s + 1)).toBeLessThanOrEqual(2 ** 61);
    expect(1000 * (1e6 * 2 ** (s + 1) + 1)).toBeGreaterThan(2 ** 61);
  });

  it('a sealed share opens only with the same key and context', () => {
    const key = Buffer.alloc(32, 7);
    const sealed = seal(key, 'job/1/0/a/b', Buffer.from('share'));
    expect(open(key, 'job/1/0/a/b', sealed).toString()).toBe('share');
    expect(() => open(key, 'job/1/0/b/a', sealed)).toThrow();
    expect(() => open(Buffer.alloc(32, 8), 'job/1/0/a/b', sealed)).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[14]! ^= 1;
    expect(() => open(key, 'job/1/0/a/b', tampered)).toThrow();
  });

  it('the SecAgg+ graph is k-regular (k even) and symmetric; 0 gives the complete graph', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
    const graph = neighbourGraph(ids, 8, 3, 5, 0);
    for (const [id, near] of graph) {
      expect(near).toHaveLength(8);
      expect(near).not.toContain(id);
      for (const other of near) expect(graph.get(other)).toContain(id);
    }
    expect(neighbourGraph(ids, 0, 3, 5, 0).get(ids[0]!)).toHaveLength(39);
    expect(thresholdFor(8, 2 / 3)).toBe(6);
    expect(thresholdFor(3, 1)).toBe(3);
  });
});

// ---- the protocol, coordinator and agents wired directly (the transports are tested end to end elsewhere) ----

interface Fleet {
  outcome: SecureRoundOutcome;
  /** Σ of the plain contributions of the agents that sent masked input, modulo 2^64. */
  plainSum: BigUint64Array;
  /** Every message the coordinator's round received. */
  received: Array<{ from: string; message: AgentMessage }>;
  contributions: Map<string, BigUint64Array>;
}

/**
 * n agents with random g; `silentAfterKeys` never send masked input (they drop after sharing keys),
 * `silentAfterInput` never answer the unmasking (they drop after sending masked input).
 */
async function runRound(options: {
  n: number;
  seeds?: number;
  threshold?: number;
  neighbours?: number;
  silentAfterKeys?: number;
  silentAfterInput?: number;
  disconnectAfterKeys?: number;
  quorum?: number;
}): Promise<Fleet> {
  const { n, seeds = 3 } = options;
  const rng = new SeededRng(11, 'secagg-test', n);
  const ids = Array.from({ length: n }, (_, i) => `agent-${String(i).padStart(4, '0')}`);
  const spec: SecureAggregationSpec = secureSpec({ participants: n, weighted: true, batchSize: 32, maxAbsG: 1e3 });
  const seedList = Array.from({ length: seeds }, (_, k) => BigInt(1000 + k));
  const task: Task = { jobId: 'job', round: 4, attempt: 1, version: 4, seeds: seedList, epsilon: 1e-3, batchSize: 32, deadlineMs: 1000, secureAggregation: spec };
  const received: Fleet['received'] = [];
  const clients = new Map<string, SecureAggregationClient>();
  const silentKeys = new Set(ids.slice(0, options.silentAfterKeys ?? 0));
  const silentInput = new Set(ids.slice(n - (options.silentAfterInput ?? 0)));
  const disconnected = new Set(ids.slice(options.silentAfterKeys ?? 0, (options.silentAfterKeys ?? 0) + (options.disconnectAfterKeys ?? 0)));
  const round: SecureRound = new SecureRound({
    jobId: 'job',
    round: 4,
    attempt: 1,
    seeds: seedList,
    assigned: ids,
    quorum: options.quorum ?? 2,
    spec,
    options: secureAggregationOptionsSchema.parse({ threshold: options.threshold ?? 2 / 3, neighbours: options.neighbours ?? 0 }),
    graphSeed: 9,
    phaseMs: 150,
    send: (to, message) => {
      // A silent agent takes no unmask request; a disconnected one cannot be sent anything after its keys.
      if (disconnected.has(to)) return false;
      if (message.kind === 'secAggUnmask' && silentInput.has(to)) return true;
      clients.get(to)!.handle(message);
      return true;
    },
  });
  const contributions = new Map<string, BigUint64Array>();
  for (const id of ids) {
    clients.set(
      id,
      new SecureAggregationClient(id, (message) => {
        received.push({ from: id, message });
        const refused = round.handle(id, message);
        if (refused !== undefined) throw new Error(`${id}: ${refused}`);
      }),
    );
  }
  for (const id of ids) clients.get(id)!.begin(task);
  for (const id of ids) {
    const g = Array.from({ length: seeds }, () => (rng.nextFloat() - 0.5) * 200);
    const lossPlus = g.map(() => 2 + rng.nextFloat());
    const lossMinus = g.map(() => 2 + rng.nextFloat());
    const sampleCount = 16 + rng.nextBelow(17);
    contributions.set(id, encodeContribution(spec, g, lossPlus, lossMinus, sampleCount));
    if (!silentKeys.has(id) && !disconnected.has(id)) clients.get(id)!.submit(task, g, lossPlus, lossMinus, sampleCount);
  }
  const outcome = await round.run();
  const plainSum = new BigUint64Array(seeds + 2);
  for (const id of ids) if (!silentKeys.has(id) && !disconnected.has(id)) addWords(plainSum, contributions.get(id)!);
  return { outcome, plainSum, received, contributions };
}

describe('a secure round (Bonawitz et al. 2017)', () => {
  it('unmasks to the plain fixed-point sum bit for bit, and the coordinator never holds a plain contribution', async () => {
    const { outcome, plainSum, received, contributions } = await runRound({ n: 12 });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect([...outcome.words]).toEqual([...plainSum]);
    expect(outcome.survivors).toHaveLength(12);
    expect(outcome.sums.contributors).toBe(12);
    // What reached the coordinator: keys, sealed shares, masked words, revealed shares. No masked input equals any
    // agent's plain contribution in any word, and no message kind carries g or losses.
    const kinds = new Set(received.map((r) => r.message.kind));
    expect([...kinds].sort()).toEqual(['secAggKeys', 'secAggMaskedInput', 'secAggReveal', 'secAggShares']);
    for (const { from, message } of received) {
      if (message.kind !== 'secAggMaskedInput') continue;
      const plain = contributions.get(from)!;
      message.secAggMaskedInput.words.forEach((w, i) => expect(w).not.toBe(plain[i]));
    }
  });

  it('recovers from agents that drop after sharing keys and after sending masked input (up to 1 − θ of each neighbourhood)', async () => {
    // 15 agents, θ = 2/3 of 14 neighbours: t = 10; 2 drop before their input, 2 more never answer the unmasking,
    // leaving 11 ≥ t revealers.
    const { outcome, plainSum } = await runRound({ n: 15, silentAfterKeys: 2, silentAfterInput: 2 });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.dropped).toHaveLength(2);
    expect(outcome.survivors).toHaveLength(13);
    expect([...outcome.words]).toEqual([...plainSum]);
  });

  it('recovers on the SecAgg+ sparse graph, with agents that disconnect mid-round', async () => {
    // k = 10, t = 7: three agents out in all, so no neighbourhood loses more than 10 − t, wherever they sit.
    const { outcome, plainSum } = await runRound({ n: 40, neighbours: 10, silentAfterKeys: 1, disconnectAfterKeys: 1, silentAfterInput: 1 });
    expect(outcome.ok ? '' : outcome.reason).toBe('');
    if (!outcome.ok) return;
    expect(outcome.survivors).toHaveLength(38);
    expect([...outcome.words]).toEqual([...plainSum]);
  });

  it('below the threshold the round fails cleanly instead of returning a wrong sum', async () => {
    // t = 10 of 14; 5 of the 15 never answer the unmasking, so survivors' self masks have at most 9 shares.
    const { outcome } = await runRound({ n: 15, silentAfterInput: 5 });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.reason).toMatch(/below threshold/);
  });

  it('fails cleanly when fewer agents than the quorum send masked input', async () => {
    const { outcome } = await runRound({ n: 6, silentAfterKeys: 3, quorum: 4 });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.reason).toMatch(/masked input, 4 needed/);
  });
});

describe('the strategies over secure sums', () => {
  const agents = Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: '' } }));

  it('the weighted mean of the sums is the mean of the answers', () => {
    const strategy = new MezoStrategy({ agentsPerRound: 4, seedMode: 'shared', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 0.1 } });
    const target = secureAggregationTarget(strategy);
    expect(target).toMatchObject({ weighted: true });
    const context = { round: 0, attempt: 0, version: 0 };
    const seeds = strategy.configureRound(context, agents)[0]!.seeds;
    const answers = [
      { g: [1, -2], w: 10, loss: 3 },
      { g: [3, 4], w: 30, loss: 5 },
    ];
    const plain = strategy.aggregate(context, answers.map((a, i) => ({ agentId: `a${i}`, seeds, g: a.g, lossPlus: [a.loss, a.loss], lossMinus: [a.loss, a.loss], sampleCount: a.w })))!;
    const sums = { seeds, gSums: [10 * 1 + 30 * 3, 10 * -2 + 30 * 4], weightSum: 40, lossSum: 8, contributors: 2 };
    const secure = target.aggregate(context, sums, [])!;
    secure.terms.forEach((t, k) => expect(t.coeff).toBeCloseTo(plain.terms[k]!.coeff, 12));
    expect(secure.trainLoss).toBeCloseTo(plain.trainLoss, 12);
  });

  it('central DP releases the unmasked sum of clipped values plus its noise, and accounts the round', () => {
    const dp = new CentralDpStrategy(new MezoStrategy({ agentsPerRound: 4, seedMode: 'shared', seedsPerAgent: 2, schedule: { kind: 'constant', lr: 0.1 } }), { clip: 1, noiseMultiplier: 1e-9 });
    const target = secureAggregationTarget(dp);
    expect(target).toMatchObject({ weighted: false, clipL2: 1 });
    const context = { round: 0, attempt: 0, version: 0 };
    const seeds = dp.configureRound(context, agents)[0]!.seeds;
    // Four agents' clipped vectors sum to (2.5, −1.5): a norm above C, so the wrapper must not clip the sum.
    const update = target.aggregate(context, { seeds, gSums: [2.5, -1.5], weightSum: 4, lossSum: 8, contributors: 4 }, [])!;
    expect(update.terms.map((t) => t.coeff / (-0.1 / 2))).toEqual([expect.closeTo(2.5 / 4, 6), expect.closeTo(-1.5 / 4, 6)]);
    expect(update.trainLoss).toBeCloseTo(2, 12);
    expect(dp.roundsReleased).toBe(1);
  });

  it('refuses what needs individual values', () => {
    expect(() => secureAggregationTarget(new MezoStrategy({ seedMode: 'shared', aggregation: 'median' }))).toThrow(/strategy.aggregation 'median'/);
    expect(() => secureAggregationTarget(new CentralDpStrategy(new MezoStrategy({ seedMode: 'distinct' }), { clip: 1, noiseMultiplier: 1 }))).toThrow(/strategy.seedMode 'distinct'/);
  });
});
