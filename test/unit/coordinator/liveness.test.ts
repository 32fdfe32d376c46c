import { describe, expect, it } from 'vitest';
import { Coordinator } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type TransportError } from '../../../shared/transport/index.js';

// The coordinator ends a session the agent leaves silent for 5 heartbeat periods. The periods are the
// coordinator's own pings, so the rule holds on a loaded machine: a stalled coordinator does not blame its agents.
const HEARTBEAT_MS = 20;
const base = new Float32Array(16).map((_, i) => i / 16);
const baseSha256 = slabSha256(base);

async function listening() {
  const transport = new InMemoryTransport();
  const log = UpdateLog.inMemory({ jobId: 'unit', baseSha256, distribution: 'gaussian' });
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId: 'unit', heartbeatMs: HEARTBEAT_MS, rounds: 1 } });
  await c.listen();
  return { c, transport };
}

/** An agent session that counts the pings it gets, answers them when `answer`, and resolves `ended` on close. */
async function agent(transport: InMemoryTransport, answer: boolean) {
  const agentId = answer ? 'alive' : 'mute';
  const client = transport.connect({ agentId, token: '' });
  await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
  const state = { pings: 0, closed: false, error: undefined as TransportError | undefined };
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const session = client.session({
    message: (m) => {
      if (m.kind !== 'ping') return;
      state.pings++;
      if (answer) session.send({ kind: 'pong', nonce: m.nonce });
      wake();
    },
    invalid: () => undefined,
    closed: (error) => {
      state.closed = true;
      state.error = error;
      wake();
    },
  });
  /** Resolves once `predicate` holds or the session closed. */
  const settle = async (predicate: () => boolean) => {
    while (!predicate() && !state.closed) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  return { state, settle, session };
}

describe('coordinator liveness', () => {
  it('ends a session that leaves 5 pings in a row unanswered, with DEADLINE_EXCEEDED', async () => {
    const { c, transport } = await listening();
    const mute = await agent(transport, false);
    await mute.settle(() => false);
    expect(mute.state).toMatchObject({ pings: 5, closed: true });
    expect(mute.state.error?.code).toBe('DEADLINE_EXCEEDED');
    await c.close();
  });

  it('keeps a session that answers, across a stall of the coordinator longer than 5 heartbeat periods', async () => {
    const { c, transport } = await listening();
    const alive = await agent(transport, true);
    await alive.settle(() => alive.state.pings >= 2);
    // Hold the event loop, as CPU starvation or a long synchronous task does: no timer and no socket is served.
    const until = Date.now() + 20 * HEARTBEAT_MS;
    while (Date.now() < until);
    const before = alive.state.pings;
    await alive.settle(() => alive.state.pings >= before + 3);
    expect(alive.state.closed).toBe(false);
    expect(c.agentStatus('alive')).toMatchObject({ connected: true });
    alive.session.end();
    await c.close();
  });
});
