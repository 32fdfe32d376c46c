import { describe, expect, it } from 'vitest';
import { AgentRegistry, type AgentRecord } from '../../../coordinator/agent-registry.js';
import { OpenRound } from '../../../coordinator/open-round.js';
import { parseRoundOptions } from '../../../coordinator/options.js';
import { ResultValidator } from '../../../coordinator/result-validator.js';
import type { JoinRequest, Result } from '../../../shared/transport/index.js';

// The coordinator's rooms on their own, without a transport: what the result validator takes and rejects, and
// what the agent registry admits, charges and refuses.

const EPSILON = 1e-3;
const seeds = [5n, 6n];
const capabilities = { memoryBytes: 0, cores: 1, noiseImpl: 'js' } as const;

function joinRequest(agentId: string, token = ''): JoinRequest {
  return { agentId, token, capabilities, baseSha256: '0'.repeat(64), versionHeld: 0 };
}

/** A registry with one admitted agent per id, and the records it keeps. */
function registry(options: Parameters<typeof parseRoundOptions>[0] = { jobId: 'rooms' }) {
  const agents = new AgentRegistry(parseRoundOptions(options));
  const admit = (agentId: string, token = ''): AgentRecord => agents.admit(joinRequest(agentId, token), 0);
  return { agents, admit };
}

/** A consistent answer to `seeds` (g from the losses with the central estimator). */
function result(overrides: Partial<Result> = {}): Result {
  const lossPlus = [1.2, 0.8];
  const lossMinus = [1.0, 1.0];
  const g = lossPlus.map((l, k) => (l - lossMinus[k]!) / (2 * EPSILON));
  return { round: 3, attempt: 1, seeds, g, lossPlus, lossMinus, sampleCount: 16, ...overrides };
}

describe('the result validator', () => {
  const options = parseRoundOptions({ jobId: 'rooms', epsilon: EPSILON, batchSize: 16, maxAbsG: 1000 });

  function setup(secure = false) {
    const { admit } = registry();
    const a = admit('a');
    const b = admit('b');
    // Round 3, attempt 1, at version 7; a and b asked, quorum 2; an hour's deadline (never reached here).
    const open = new OpenRound(3, 1, 7, new Map([['a', seeds], ['b', seeds]]), 2, 3_600_000);
    return { validator: new ResultValidator(options, secure), open, a, b, c: admit('c') };
  }

  it('takes a valid answer, raises the agent to the round version, and closes the attempt at its quorum', () => {
    const { validator, open, a, b } = setup();
    validator.take(a, result(), open, 3);
    expect([...open.results.keys()]).toEqual(['a']);
    expect(a.version).toBe(7);
    expect(open.settled).toBe(false);
    validator.take(b, result(), open, 3);
    expect(open.settled).toBe(true);
    expect(a.stats.rejected + b.stats.rejected).toBe(0);
  });

  it.each([
    ['not-assigned', (s: ReturnType<typeof setup>) => s.validator.take(s.c, result(), s.open, 3), 'c'],
    ['wrong-seeds', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ seeds: [6n, 5n] }), s.open, 3), 'a'],
    ['bad-sample-count', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ sampleCount: 17 }), s.open, 3), 'a'],
    ['out-of-bounds', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ g: [2000, 0], lossPlus: [3, 1], lossMinus: [-1, 1] }), s.open, 3), 'a'],
    ['inconsistent-g', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ g: [200, -201] }), s.open, 3), 'a'],
    ['missing-losses', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ lossMinus: undefined }), s.open, 3), 'a'],
    ['wrong-round', (s: ReturnType<typeof setup>) => s.validator.take(s.a, result({ round: 4, attempt: 0 }), s.open, 3), 'a'],
  ] as const)('rejects %s, counted against the agent that sent it, and keeps the attempt open', (reason, send, who) => {
    const s = setup();
    send(s);
    const agent = { a: s.a, c: s.c }[who];
    expect(agent.stats).toMatchObject({ rejected: 1, rejections: { [reason]: 1 }, late: 0 });
    expect(s.open.results.size).toBe(0);
    expect(s.open.settled).toBe(false);
  });

  it('rejects a second answer from the same agent as a duplicate, keeping the first', () => {
    const { validator, open, a } = setup();
    validator.take(a, result(), open, 3);
    validator.take(a, result({ g: [100, -100], lossPlus: [1.1, 0.9], lossMinus: [1, 1] }), open, 3);
    expect(a.stats).toMatchObject({ rejected: 1, rejections: { duplicate: 1 } });
    expect(open.results.get('a')!.g).toEqual(result().g);
  });

  it('counts an answer to an earlier attempt, or one after the attempt closed, as late, not as a fault', () => {
    const { validator, open, a, b } = setup();
    validator.take(a, result({ attempt: 0 }), open, 3);
    open.settle();
    validator.take(b, result(), open, 3);
    // No attempt open: judged against the round the loop runs next.
    validator.take(a, result({ round: 2 }), undefined, 3);
    expect(a.stats).toMatchObject({ late: 2, rejected: 0 });
    expect(b.stats).toMatchObject({ late: 1, rejected: 0 });
    expect(open.results.size).toBe(0);
  });

  it('takes no plain Result in a secure-aggregation job', () => {
    const { validator, open, a } = setup(true);
    validator.take(a, result(), open, 3);
    expect(a.stats.rejections).toEqual({ 'secure-aggregation': 1 });
    expect(open.results.size).toBe(0);
  });
});

describe('the agent registry', () => {
  it('admits per-agent tokens, the shared token for unlisted agents, and counts each failure', () => {
    const { agents } = registry({ jobId: 'rooms', token: 'shared', tokens: { a: 'token-a' } });
    expect(() => agents.authenticate('a', 'token-a', 'peer-1')).not.toThrow();
    expect(() => agents.authenticate('a', 'shared', 'peer-1')).toThrow(/agent a: bad token/);
    expect(() => agents.authenticate('z', 'shared', 'peer-1')).not.toThrow();
    expect(() => agents.authenticate('z', 'wrong', 'peer-1')).toThrow(/agent z: bad token/);
    expect(agents.authFailures()).toMatchObject({ failed: 2 });
    expect(agents.secretOf('a')).toBe('token-a');
    expect(agents.secretOf('z')).toBe('shared');
  });

  it('refuses agents not listed when only per-agent tokens are set, and revoked agents whatever they present', () => {
    const { agents, admit } = registry({ jobId: 'rooms', tokens: { a: 'token-a' } });
    expect(() => agents.authenticate('z', 'anything', 'peer-1')).toThrow(/agent z is not registered for this job/);
    admit('a', 'token-a');
    agents.revoke('a');
    expect(() => agents.authenticate('a', 'token-a', 'peer-1')).toThrow(/agent a: credentials revoked/);
    expect(() => agents.joined({ agentId: 'a', token: 'token-a', peer: 'peer-1' })).toThrow(/credentials revoked/);
  });

  it('refuses a call after the join with another token than the join gave', () => {
    const { agents, admit } = registry();
    admit('a', 'first');
    expect(agents.joined({ agentId: 'a', token: 'first', peer: 'p' }).id).toBe('a');
    expect(() => agents.joined({ agentId: 'a', token: 'second', peer: 'p' })).toThrow(/token differs from the one it joined with/);
    expect(() => agents.joined({ agentId: 'nobody', token: '', peer: 'p' })).toThrow(/agent nobody has not joined/);
  });

  it('refuses a peer unheard once its failures exhaust the limit, whatever credentials it then presents', () => {
    const { agents } = registry({ jobId: 'rooms', tokens: { a: 'token-a' }, authFailureLimit: { perSecond: 0.001, burst: 2 } });
    for (let i = 0; i < 2; i++) expect(() => agents.authenticate('a', 'guess', 'ip:10.0.0.9')).toThrow(/bad token/);
    expect(() => agents.authenticate('a', 'token-a', 'ip:10.0.0.9')).toThrow(/too many failed authentications/);
    expect(() => agents.authenticate('a', 'token-a', 'ip:10.0.0.10')).not.toThrow();
    expect(agents.authFailures()).toMatchObject({ failed: 2, limited: 1 });
  });

  it('charges messages to a token bucket: the burst passes, the next is refused and counted', () => {
    // A refill of one message per 1,000 s: nothing comes back during the test.
    const { agents, admit } = registry({ jobId: 'rooms', rateLimit: { perSecond: 0.001, burst: 3 } });
    const a = admit('a');
    expect([agents.spend(a), agents.spend(a), agents.spend(a), agents.spend(a)]).toEqual([true, true, true, false]);
    expect(a.stats.rateLimited).toBe(1);
    expect(agents.overBudget(a).message).toMatch(/agent a: over its message budget \(0\.001\/s, burst 3\)/);
  });

  it('takes a known agent\'s join out of its budget and refuses new agents past maxAgents', () => {
    const { agents, admit } = registry({ jobId: 'rooms', maxAgents: 1, rateLimit: { perSecond: 0.001, burst: 1 } });
    admit('a'); // a new record: its budget starts full (burst 1)
    admit('a'); // a join again: spends that one message
    expect(() => admit('a')).toThrow(/over its message budget/);
    expect(() => admit('b')).toThrow(/the job already has 1 agents/);
  });

  it('lets the pong to the latest ping through free, once, and no other pong', () => {
    const { agents, admit } = registry();
    const a = admit('a');
    const sent: unknown[] = [];
    a.session = { info: { agentId: 'a', token: '', peer: 'p' }, send: (m: unknown) => (sent.push(m), true), end: () => undefined, listen: () => undefined } as unknown as AgentRecord['session'];
    agents.pingAll();
    const nonce = (sent[0] as { nonce: number }).nonce;
    expect(a.missedPings).toBe(1);
    expect(agents.answersPing(a, { kind: 'pong', nonce: nonce + 1 })).toBe(false);
    expect(agents.answersPing(a, { kind: 'pong', nonce })).toBe(true);
    expect(agents.answersPing(a, { kind: 'pong', nonce })).toBe(false);
  });
});
