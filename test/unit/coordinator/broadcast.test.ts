import { describe, expect, it } from 'vitest';
import { Coordinator, type RoundOptionsInput } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type ClientSession, type CoordinatorMessage } from '../../../shared/transport/index.js';

const base = new Float32Array(32).map((_, i) => i / 32);
const baseSha256 = slabSha256(base);

function coordinator(options: RoundOptionsInput) {
  const transport = new InMemoryTransport();
  const log = UpdateLog.inMemory({ jobId: 'unit', baseSha256, distribution: 'gaussian' });
  const c = new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId: 'unit', heartbeatMs: 1000, ...options } });
  return { c, transport };
}

/** Records what arrives, in order ('u<version>' / 't<version>'), and answers tasks consistently. */
async function recorder(transport: InMemoryTransport, agentId: string) {
  const client = transport.connect({ agentId, token: '' });
  await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256, versionHeld: 0 });
  const seen: string[] = [];
  const session: ClientSession = client.session({
    message: (m: CoordinatorMessage) => {
      if (m.kind === 'update') seen.push(`u${m.update.version}`);
      if (m.kind !== 'task') return;
      seen.push(`t${m.task.version}`);
      const g = m.task.seeds.map(() => 0.5);
      session.send({
        kind: 'result',
        result: { round: m.task.round, attempt: m.task.attempt, seeds: m.task.seeds, g, lossPlus: g.map(() => 1 + 0.5 * m.task.epsilon), lossMinus: g.map(() => 1 - 0.5 * m.task.epsilon), sampleCount: 1 },
      });
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return seen;
}

describe('broadcasting committed updates', () => {
  it('gives every agent every update in order, an asked agent each one before its task', async () => {
    const { c, transport } = coordinator({ rounds: 12, deadlineMs: 10_000, strategy: { agentsPerRound: 2, seed: 9 } });
    await c.listen();
    const logs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => recorder(transport, id)));
    expect(await c.run()).toMatchObject({ version: 12 });
    await c.close();
    for (const seen of logs) {
      expect(seen.filter((s) => s.startsWith('u'))).toEqual(Array.from({ length: 12 }, (_, i) => `u${i + 1}`));
      // A task at version v comes after update v on the same stream.
      seen.forEach((s, i) => {
        if (s.startsWith('t') && s !== 't0') expect(seen.slice(0, i)).toContain(`u${s.slice(1)}`);
      });
    }
    expect(logs.flat().filter((s) => s.startsWith('t')).length).toBeGreaterThanOrEqual(24);
  });

  it('batches updates to idle agents by broadcastIntervalMs, and flushes them on close', async () => {
    const { c, transport } = coordinator({ rounds: 6, deadlineMs: 10_000, broadcastIntervalMs: 60_000, strategy: { agentsPerRound: 1, seed: 2 } });
    await c.listen();
    const logs = await Promise.all(['a', 'b', 'c'].map((id) => recorder(transport, id)));
    await c.run();
    // Nothing flushed yet to an agent that was never asked after the last commit: it lags until close.
    const lagging = logs.some((seen) => seen.filter((s) => s.startsWith('u')).length < 6);
    expect(lagging).toBe(true);
    await c.close();
    await new Promise((r) => setTimeout(r, 20));
    for (const seen of logs) expect(seen.filter((s) => s.startsWith('u'))).toEqual(['u1', 'u2', 'u3', 'u4', 'u5', 'u6']);
  });
});
