/** The log header of a low-rank job: the rank joins the genesis hash, and logs from before it still verify. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCorruptError, LogFormatError, UpdateLog, genesisHash, replay, type LogHeaderInput } from '../../../shared/log/index.js';
import { lowRankLayoutFromTensors, noise } from '../../../shared/noise/index.js';

const base = { jobId: 'job-1', baseSha256: 'ab'.repeat(32) };
const lowrank: LogHeaderInput = { ...base, distribution: 'lowrank', rank: 4 };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mezo-lowrank-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the log header of a low-rank job', () => {
  it('hashes gaussian and rademacher headers exactly as before the rank existed', async () => {
    for (const distribution of ['gaussian', 'rademacher'] as const) {
      const log = UpdateLog.inMemory({ ...base, distribution, decayRanges: [[10, 20]] });
      // The formula of the first log format, written out: any log written before low rank must still chain.
      const before = createHash('sha256').update(`mezo-log/1|job-1|${'ab'.repeat(32)}|${distribution}|10-20`).digest('hex');
      expect(log.genesisHash).toBe(before);
      expect(log.rank).toBeUndefined();
      expect(JSON.stringify(log.header)).not.toMatch(/rank/);
    }
  });

  it('puts the rank in the genesis hash, so logs of different ranks never chain into each other', () => {
    const four = UpdateLog.inMemory(lowrank);
    const eight = UpdateLog.inMemory({ ...lowrank, rank: 8 });
    const gaussian = UpdateLog.inMemory({ ...base, distribution: 'gaussian' });
    expect(four.genesisHash).toBe(createHash('sha256').update(`mezo-log/1|job-1|${'ab'.repeat(32)}|lowrank:4|`).digest('hex'));
    expect(new Set([four.genesisHash, eight.genesisHash, gaussian.genesisHash]).size).toBe(3);
    expect(four.rank).toBe(4);
    expect(four.distribution).toBe('lowrank');
  });

  it('refuses lowrank without a rank, a rank with another distribution, and ranks outside 1–64, naming the field', () => {
    expect(() => UpdateLog.inMemory({ ...base, distribution: 'lowrank' })).toThrow(LogFormatError);
    expect(() => UpdateLog.inMemory({ ...base, distribution: 'lowrank' })).toThrow(/log header: rank: is required/);
    expect(() => UpdateLog.inMemory({ ...base, distribution: 'gaussian', rank: 4 })).toThrow(/log header: rank: is only allowed/);
    for (const rank of [0, 65, 2.5]) expect(() => UpdateLog.inMemory({ ...lowrank, rank })).toThrow(/log header: rank/);
  });

  it('reopens a low-rank log file and verifies it; a different rank is not this log', async () => {
    const path = join(dir, 'update.log');
    const log = await UpdateLog.open(path, lowrank);
    await log.append({ round: 0, lr: 1e-3, terms: [{ seed: 7n, coeff: -1e-3 }] });
    await log.append({ round: 1, lr: 1e-3, terms: [{ seed: (5n << 32n) | 9n, coeff: 2e-3 }] });
    const head = log.headHash;
    await log.close();
    const again = await UpdateLog.open(path, lowrank);
    expect(again.headHash).toBe(head);
    expect(again.rank).toBe(4);
    await again.close();
    await expect(UpdateLog.open(path, { ...lowrank, rank: 2 })).rejects.toThrow(LogCorruptError);
    await expect(UpdateLog.open(path, { ...base, distribution: 'gaussian' })).rejects.toThrow(LogCorruptError);
  });

  it('replays a low-rank log only with the layout, and then as the engine applies each term', () => {
    const tensors = [
      { offset: 0, shape: [8] },
      { offset: 16, shape: [12, 10] },
      { offset: 144, shape: [6, 3, 2] },
    ];
    const layout = lowRankLayoutFromTensors(tensors, 2);
    const entries = UpdateLog.inMemory(lowrank);
    const terms = [
      { seed: (3n << 32n) | 1n, coeff: -0.5 },
      { seed: (3n << 32n) | 2n, coeff: 0.25 },
    ];
    return entries.append({ round: 0, lr: 1e-3, terms }).then(() => {
      const slab = new Float32Array(180);
      expect(() => replay(noise, slab, entries.entries(), 'lowrank')).toThrow(/options\.lowRank/);
      replay(noise, slab, entries.entries(), 'lowrank', { lowRank: layout });
      const expected = new Float32Array(180);
      for (const { seed, coeff } of terms) noise.perturb(expected, seed, Math.fround(coeff), { distribution: 'lowrank', lowRank: layout });
      expect(Buffer.from(slab.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      // Not the Gaussian: the matrices took rank-2 noise.
      const gaussian = new Float32Array(180);
      replay(noise, gaussian, entries.entries(), 'gaussian');
      expect(Buffer.from(gaussian.buffer).equals(Buffer.from(slab.buffer))).toBe(false);
    });
  });
});
