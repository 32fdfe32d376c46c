import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Coordinator, loadLatestSnapshot, snapshotFileName, writeSnapshot } from '../../../coordinator/index.js';
import { replay, UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type ClientSession } from '../../../shared/transport/index.js';

const base = new Float32Array(48).map((_, i) => Math.cos(i));
const header = { jobId: 'snap', baseSha256: slabSha256(base), distribution: 'gaussian' as const };
const dir = mkdtempSync(join(tmpdir(), 'mezo-snapshot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function answering(transport: InMemoryTransport, agentId: string): Promise<void> {
  const client = transport.connect({ agentId, token: '' });
  await client.join({ agentId, token: '', capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: header.baseSha256, versionHeld: 0 });
  const session: ClientSession = client.session({
    message: (m) => {
      if (m.kind !== 'task') return;
      const g = m.task.seeds.map(() => 0.75);
      session.send({
        kind: 'result',
        result: { round: m.task.round, attempt: m.task.attempt, seeds: m.task.seeds, g, lossPlus: g.map(() => 1 + 0.75 * m.task.epsilon), lossMinus: g.map(() => 1 - 0.75 * m.task.epsilon), sampleCount: 1 },
      });
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
}

async function start(logPath: string, rounds: number, snapshots: string) {
  const transport = new InMemoryTransport();
  const log = await UpdateLog.open(logPath, header);
  const c = new Coordinator({
    log, baseSlab: base, engine: noise, transport, snapshots: { dir: snapshots, every: 2, keep: 3 },
    options: { jobId: 'snap', rounds, heartbeatMs: 1000, strategy: { agentsPerRound: 2, seedsPerAgent: 2, schedule: { lr: 0.05 } } },
  });
  await c.listen();
  return { c, transport };
}

const fullReplay = (log: UpdateLog): string => {
  const slab = base.slice();
  replay(noise, slab, log.entries(), 'gaussian', { decayRanges: [] });
  return slabSha256(slab);
};

describe('snapshots', () => {
  it('are written every n versions; a restart materialises from the newest valid one, bit-identical to a full replay', async () => {
    const logPath = join(dir, 'a', 'update.log');
    const snapshots = join(dir, 'a', 'snapshots');
    const first = await start(logPath, 7, snapshots);
    await Promise.all([answering(first.transport, 'x'), answering(first.transport, 'y')]);
    await first.c.run();
    await first.c.close();
    expect(readdirSync(snapshots).sort()).toEqual([2, 4, 6].map(snapshotFileName)); // keep 3

    const second = await start(logPath, 7, snapshots);
    expect(second.c.snapshotScan?.snapshot?.meta.version).toBe(6);
    expect(second.c.snapshotScan?.rejected).toEqual([]);
    expect(second.c.weightsSha256()).toBe(fullReplay(second.c.log));
    await second.c.close();

    // A damaged newest snapshot is skipped for the next one; the weights are still exact.
    const newest = join(snapshots, snapshotFileName(6));
    const bytes = readFileSync(newest);
    bytes[bytes.length - 3]! ^= 0x40;
    writeFileSync(newest, bytes);
    const third = await start(logPath, 7, snapshots);
    expect(third.c.snapshotScan?.snapshot?.meta.version).toBe(4);
    expect(third.c.snapshotScan?.rejected).toEqual([{ path: newest, reason: 'weights do not match their recorded SHA-256' }]);
    expect(third.c.weightsSha256()).toBe(fullReplay(third.c.log));
    await third.c.close();
  });

  it('refuse a snapshot of another chain, or one past the log', async () => {
    const other = UpdateLog.inMemory(header);
    await other.append({ round: 0, lr: 1, terms: [{ seed: 5n, coeff: 0.5 }] });
    const mine = UpdateLog.inMemory(header);
    await mine.append({ round: 0, lr: 1, terms: [{ seed: 6n, coeff: 0.5 }] });
    const snapshots = join(dir, 'b');
    await writeSnapshot(snapshots, other, 1, base);
    expect((await loadLatestSnapshot(snapshots, mine, base.length)).rejected[0]!.reason).toBe('entry 1 of the log has another hash');
    expect((await loadLatestSnapshot(snapshots, UpdateLog.inMemory(header), base.length)).rejected[0]!.reason).toMatch(/not in the log/);
    expect((await loadLatestSnapshot(join(dir, 'missing'), mine, base.length)).snapshot).toBeUndefined();
    await expect(writeSnapshot(snapshots, mine, 2, base)).rejects.toThrow(/not an entry of the log/);
  });
});
