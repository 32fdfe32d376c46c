import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CoefficientSums,
  CompactionError,
  LogCorruptError,
  LogFormatError,
  UpdateLog,
  collapseTerms,
  decodeEntryPayload,
  encodeEntryPayload,
  hashPayload,
  lastRebaseIndex,
  replay,
  verifyRebases,
  type LogEntry,
  type LogHeaderInput,
} from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { bitsOf, expectSameBits } from '../../helpers/bits.js';

const header: LogHeaderInput = { jobId: 'compact', baseSha256: 'ab'.repeat(32), distribution: 'gaussian' };
const POOL = [9n, 2n ** 64n - 1n, 3n, 2n ** 32n, 2n ** 32n - 1n, 0n];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mezo-compaction-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Round r: three pool seeds with coefficients that shrink and change sign, as an lr schedule would. */
const termsFor = (round: number) =>
  [0, 1, 2].map((j) => ({ seed: POOL[(round * 2 + j) % POOL.length]!, coeff: ((-1) ** (round + j) * 1e-3) / (1 + round) + j * 1e-5 }));

async function fill(log: UpdateLog, from: number, to: number): Promise<void> {
  for (let round = from; round < to; round++) await log.append({ round, lr: 1e-3 / (1 + round), terms: termsFor(round) });
}

/** The rule of compaction.ts, spelled out independently: double sums from genesis per chained rebase. */
function expectedSums(entries: readonly LogEntry[]): Array<{ seed: bigint; coeff: number }> {
  const sums = new Map<bigint, number>();
  for (const entry of entries) {
    if (entry.kind === 'rebase') {
      sums.clear();
      for (const t of entry.terms) sums.set(t.seed, t.coeff);
    } else for (const t of entry.terms) sums.set(t.seed, (sums.get(t.seed) ?? 0) + t.coeff);
  }
  return [...sums.keys()].sort((a, b) => (a < b ? -1 : 1)).map((seed) => ({ seed, coeff: Math.fround(sums.get(seed)!) }));
}

describe('the rebase record (kind 2)', () => {
  it('has its own canonical layout, pinned by a hash computed from the bytes by hand', async () => {
    const log = UpdateLog.inMemory(header);
    await log.append({ round: 4, lr: 0.5, terms: [{ seed: 7n, coeff: 0.25 }, { seed: 2n ** 64n - 1n, coeff: -2 }] });
    const rebase = await log.appendRebase({ round: 4 });
    expect(rebase).toMatchObject({ kind: 'rebase', version: 2, round: 4, lr: 0, decay: 1 });
    expect(rebase.terms).toEqual([{ seed: 7n, coeff: 0.25 }, { seed: 2n ** 64n - 1n, coeff: -2 }]);

    // u8 kind · u64 version · u64 round · 32 B prev hash · u32 count · count × (u64 seed · f32 sum)
    const bytes = Buffer.alloc(1 + 8 + 8 + 32 + 4 + 2 * 12);
    bytes[0] = 2;
    bytes.writeBigUInt64LE(2n, 1);
    bytes.writeBigUInt64LE(4n, 9);
    Buffer.from(log.entries(0, 1)[0]!.hash, 'hex').copy(bytes, 17);
    bytes.writeUInt32LE(2, 49);
    bytes.writeBigUInt64LE(7n, 53);
    bytes.writeFloatLE(0.25, 61);
    bytes.writeBigUInt64LE(2n ** 64n - 1n, 65);
    bytes.writeFloatLE(-2, 73);
    expect(rebase.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    const { hash, ...unsigned } = rebase;
    expect(encodeEntryPayload(unsigned)).toEqual(bytes);
    expect(decodeEntryPayload(bytes)).toEqual(unsigned);
    expect(hashPayload(bytes)).toBe(hash);
    // An update record still starts with kind 1 and decodes as an update.
    expect(decodeEntryPayload(encodeEntryPayload(log.entries(0, 1)[0]!))).toMatchObject({ kind: 'update', lr: 0.5 });
  });

  it('refuses non-canonical rebases and damaged records, naming the field', () => {
    const base = { kind: 'rebase' as const, version: 3, round: 1, prevHash: 'cd'.repeat(32), lr: 0, decay: 1 };
    const terms = [{ seed: 1n, coeff: 0.5 }, { seed: 5n, coeff: -1 }];
    expect(() => encodeEntryPayload({ ...base, terms: [terms[1]!, terms[0]!] })).toThrow(/entry\.terms\[1\]\.seed must be above entry\.terms\[0\]\.seed/);
    expect(() => encodeEntryPayload({ ...base, terms: [terms[0]!, terms[0]!] })).toThrow(/entry\.terms\[1\]\.seed/);
    expect(() => encodeEntryPayload({ ...base, lr: 1e-3, terms })).toThrow(/entry\.lr must be 0 in a rebase/);
    expect(() => encodeEntryPayload({ ...base, decay: Math.fround(0.9), terms })).toThrow(/entry\.decay must be 1 in a rebase/);
    expect(() => encodeEntryPayload({ ...base, kind: 'snapshot' as never, terms })).toThrow(LogFormatError);

    const good = encodeEntryPayload({ ...base, terms });
    expect(() => decodeEntryPayload(good.subarray(0, good.length - 1))).toThrow(/declares 2 terms/);
    const unknown = Buffer.from(good);
    unknown[0] = 3;
    expect(() => decodeEntryPayload(unknown)).toThrow(/unknown record kind 3/);
    const swapped = Buffer.from(good);
    swapped.writeBigUInt64LE(9n, 53); // first seed above the second
    expect(() => decodeEntryPayload(swapped)).toThrow(/ascending/);
  });
});

describe('the coefficient-sum rule', () => {
  it('sums the stored binary32 coefficients in binary64, in log order, and rounds once to binary32', async () => {
    const log = UpdateLog.inMemory(header);
    const tiny = 2 ** -24;
    await log.append({ round: 0, lr: 1, terms: [{ seed: 1n, coeff: 1 }] });
    await log.append({ round: 1, lr: 1, terms: [{ seed: 1n, coeff: tiny }, { seed: 2n, coeff: 0.1 }] });
    await log.append({ round: 2, lr: 1, terms: [{ seed: 1n, coeff: tiny }, { seed: 2n, coeff: 0.2 }] });
    // Float32 in order would give 1 (each half-ulp step ties to even); the binary64 sum keeps both steps.
    expect(Math.fround(Math.fround(1 + tiny) + tiny)).toBe(1);
    const rebase = await log.appendRebase({ round: 2 });
    expect(rebase.terms).toEqual([
      { seed: 1n, coeff: 1 + 2 ** -23 },
      { seed: 2n, coeff: Math.fround(Math.fround(0.1) + Math.fround(0.2)) },
    ]);
    // Chained: the next rebase starts from this record's binary32 sums, plus what follows, seeds kept.
    await log.append({ round: 3, lr: 1, terms: [{ seed: 3n, coeff: -0.5 }, { seed: 1n, coeff: 0.3 }] });
    const next = await log.appendRebase({ round: 3 });
    expect(next.terms).toEqual([
      { seed: 1n, coeff: Math.fround(1 + 2 ** -23 + Math.fround(0.3)) },
      { seed: 2n, coeff: rebase.terms[1]!.coeff },
      { seed: 3n, coeff: -0.5 },
    ]);
    expect(collapseTerms(log.entries(0, 5))).toEqual(next.terms);
    expect(lastRebaseIndex(log.entries())).toBe(5);
    expect(log.lastRebaseVersion).toBe(6);
  });

  it('matches an independent spelling of the rule over a long history with many rebases, seeds ascending as u64', async () => {
    const log = UpdateLog.inMemory(header);
    for (let block = 0; block < 6; block++) {
      await fill(log, block * 17, block * 17 + 17);
      const rebase = await log.appendRebase({ round: block * 17 + 16 });
      expect(rebase.terms).toEqual(expectedSums(log.entries(0, rebase.version - 1)));
      expect(rebase.terms.map((t) => t.seed)).toEqual([...POOL].sort((a, b) => (a < b ? -1 : 1)));
    }
    expect(() => verifyRebases(log.entries())).not.toThrow();
    // A caller's own terms are checked against the log's.
    await fill(log, 200, 203);
    const right = collapseTerms(log.entries());
    await expect(log.appendRebase({ round: 202, terms: right.map((t, k) => (k === 2 ? { ...t, coeff: t.coeff * 2 } : t)) })).rejects.toThrow(CompactionError);
    await expect(log.appendRebase({ round: 202, terms: right })).resolves.toMatchObject({ kind: 'rebase', terms: right });
  });

  it('refuses compaction across weight decay, and says why', async () => {
    const log = UpdateLog.inMemory({ ...header, decayRanges: [[0, 8]] });
    await log.append({ round: 0, lr: 1, terms: termsFor(0) });
    await log.append({ round: 1, lr: 1, decay: 0.99, terms: termsFor(1) });
    await expect(log.appendRebase({ round: 1 })).rejects.toThrow(/entry 2 decays the weights.*no rebase with weight decay/);
    expect(log.version).toBe(2);
    const sums = new CoefficientSums();
    for (const entry of log.entries()) sums.add(entry);
    expect(() => sums.terms()).toThrow(CompactionError);
  });
});

describe('an update log with rebase records', () => {
  it('reopens with the last rebase known and goes on compacting; a forged rebase makes the file corrupt', async () => {
    const path = join(dir, 'a.log');
    const log = await UpdateLog.open(path, header);
    await fill(log, 0, 10);
    await log.appendRebase({ round: 9 });
    await fill(log, 10, 13);
    await log.close();

    const reopened = await UpdateLog.open(path, header);
    expect(reopened.lastRebaseVersion).toBe(11);
    expect(reopened.version).toBe(14);
    const next = await reopened.appendRebase({ round: 12 });
    expect(next.terms).toEqual(expectedSums(reopened.entries(0, 14)));
    const head = reopened.headHash;
    await reopened.close();

    // A record whose hash and chain are right but whose sums are not: the log refuses to open.
    const forged = encodeEntryPayload({ kind: 'rebase', version: 16, round: 12, prevHash: head, lr: 0, decay: 1, terms: next.terms.map((t) => ({ ...t, coeff: t.coeff + 1 })) });
    const length = Buffer.alloc(4);
    length.writeUInt32LE(forged.length);
    // A whole record in the file's framing: length, payload, hash, no signature (length byte 0).
    appendFileSync(path, Buffer.concat([length, forged, Buffer.from(hashPayload(forged), 'hex'), Buffer.from([0])]));
    await expect(UpdateLog.open(path, header)).rejects.toThrow(LogCorruptError);
    await expect(UpdateLog.open(path, header)).rejects.toThrow(/rebase record at version 16 does not follow/);
  });

  it('replays from the last rebase (base reloaded, K terms, then the tail): same bits as a replay from genesis', async () => {
    const log = UpdateLog.inMemory(header);
    await fill(log, 0, 40);
    await log.appendRebase({ round: 39 });
    await fill(log, 40, 43);
    const base = new Float32Array(4099).map((_, i) => Math.sin(i) * 0.05);

    const full = base.slice();
    replay(noise, full, log.entries(), 'gaussian', { base });
    // By hand: the base, then the rebase's terms in record order, then the three entries after it.
    const byHand = base.slice();
    noise.accumulate(byHand, log.entries(40, 41)[0]!.terms, { distribution: 'gaussian' });
    for (const entry of log.entries(41)) noise.accumulate(byHand, entry.terms, { distribution: 'gaussian' });
    expectSameBits(full, byHand, 'replay vs by hand');
    // Whatever the slab held before is overwritten; entries split anywhere give the same bits.
    const split = new Float32Array(base.length).fill(7);
    replay(noise, split, log.entries(0, 20), 'gaussian', { base });
    replay(noise, split, log.entries(20), 'gaussian', { base });
    expectSameBits(split, full, 'split replay');

    expect(() => replay(noise, base.slice(), log.entries(), 'gaussian')).toThrow(/entry 41 is a rebase record; options\.base/);
    expect(() => replay(noise, base.slice(), log.entries(), 'gaussian', { base: base.subarray(1) })).toThrow(/options\.base holds/);

    // Why the record exists: in-order application of the same 43 updates differs in some bits, but only slightly.
    const inOrder = base.slice();
    replay(noise, inOrder, log.entries().filter((e) => e.kind === 'update'), 'gaussian');
    const a = bitsOf(full);
    const b = bitsOf(inOrder);
    let differing = 0;
    let worst = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) differing++;
      worst = Math.max(worst, Math.abs(full[i]! - inOrder[i]!));
    }
    expect(differing).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-7);
  });
});
