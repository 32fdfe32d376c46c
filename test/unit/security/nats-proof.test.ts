/**
 * The proofs that stand for an agent's token on NATS (nats/proof.ts): what they bind, and how a coordinator
 * treats a request whose proof is stale, bound to another method or agent, or made with another token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { NonceCache, PROOF_WINDOW_MS, newNonce, requestProof, sessionKey, uplinkMac } from '../../../shared/transport/nats/proof.js';
import { NatsTransport, jobSubjects, type CallInfo, type CoordinatorHandler, type Listener } from '../../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../../helpers/nats-server.js';

const fields = { root: 'mezo.job', agentId: 'a1', method: 'join', time: '1000', nonce: 'n'.repeat(22), session: '', transfer: '', control: '' };
const body = Buffer.from('body');

describe('NATS proofs', () => {
  it('bind every field and the body, under the token', () => {
    const proof = requestProof('tok', fields, body);
    expect(requestProof('tok', fields, body)).toBe(proof);
    expect(requestProof('tok2', fields, body)).not.toBe(proof);
    expect(requestProof('tok', fields, Buffer.from('bodY'))).not.toBe(proof);
    for (const key of Object.keys(fields) as Array<keyof typeof fields>) {
      expect(requestProof('tok', { ...fields, [key]: `${fields[key]}x` }, body), key).not.toBe(proof);
    }
  });

  it('derive one session key per session and bind each uplink message to its sequence number', () => {
    const key = sessionKey('tok', 'mezo.job', 'a1', 'S1', 'rn', 'sn');
    expect(sessionKey('tok', 'mezo.job', 'a1', 'S1', 'rn', 'sn').equals(key)).toBe(true);
    expect(sessionKey('tok', 'mezo.job', 'a1', 'S1', 'rn', 'other').equals(key)).toBe(false);
    expect(sessionKey('tok', 'mezo.job', 'a2', 'S1', 'rn', 'sn').equals(key)).toBe(false);
    const mac = uplinkMac(key, 1, '', '', body);
    expect(uplinkMac(key, 2, '', '', body)).not.toBe(mac);
    expect(uplinkMac(key, 1, 'end', '', body)).not.toBe(mac);
    expect(newNonce()).not.toBe(newNonce());
  });

  it('remember nonces once, in a bounded table', () => {
    const cache = new NonceCache(3);
    expect(cache.remember('a', 10, 0)).toBe(true);
    expect(cache.remember('a', 10, 0)).toBe(false);
    for (const n of ['b', 'c', 'd', 'e']) expect(cache.remember(n, 10, 0)).toBe(true);
    expect(cache.size).toBe(3);
  });
});

describe.skipIf(!natsServerPath())('a NATS coordinator checking proofs', () => {
  const JOB = 'proof-unit';
  const subjects = jobSubjects(JOB);
  let server: NatsServer;
  let nc: NatsConnection;
  let listener: Listener;
  const seen: CallInfo[] = [];
  const handler: CoordinatorHandler = {
    join: async () => {
      throw new Error('not used');
    },
    fetchLog: async (_request, info) => {
      seen.push(info);
      return { entries: [], headVersion: 0 };
    },
    fetchSnapshot: async () => [],
    session: () => undefined,
    secretOf: (agentId) => (agentId === 'a1' ? 'tok' : undefined),
  };
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    listener = await new NatsTransport({ jobId: JOB, connection: nc }).listen(handler);
  });
  afterAll(async () => {
    await listener.close();
    await nc.close();
    await server.stop(true);
  });

  /** A FetchLog request for `agentId` with a proof made from `overrides`; the token the handler was given. */
  async function tokenSeen(agentId: string, token: string, overrides: Partial<typeof fields> = {}): Promise<string> {
    const data = Buffer.from([0x08, 0x00]);
    const f = { ...fields, root: subjects.root, agentId, method: 'fetchlog', time: String(Date.now()), nonce: newNonce(), ...overrides };
    const h = natsHeaders();
    h.set('Mezo-Time', f.time);
    h.set('Mezo-Nonce', f.nonce);
    h.set('Mezo-Proof', requestProof(token, f, data));
    const before = seen.length;
    await nc.request(subjects.rpc(agentId, 'fetchlog'), data, { headers: h, timeout: 5000 });
    return seen.length > before ? seen.at(-1)!.token : 'not served';
  }

  it('hands the handler the token only for a fresh proof of this agent, method and token', async () => {
    expect(await tokenSeen('a1', 'tok')).toBe('tok');
    expect(await tokenSeen('a1', 'wrong')).toBe('');
    expect(await tokenSeen('a1', 'tok', { method: 'join' })).toBe('');
    expect(await tokenSeen('a1', 'tok', { agentId: 'a2' })).toBe('');
    expect(await tokenSeen('a1', 'tok', { root: 'mezo.other' })).toBe('');
    expect(await tokenSeen('a1', 'tok', { time: String(Date.now() - PROOF_WINDOW_MS - 60_000) })).toBe('');
    expect(await tokenSeen('a1', 'tok', { time: String(Date.now() + PROOF_WINDOW_MS + 60_000) })).toBe('');
    // An agent no token applies to is served without one.
    expect(await tokenSeen('a2', 'anything')).toBe('');
  });
});
