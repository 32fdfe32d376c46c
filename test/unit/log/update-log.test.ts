import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCorruptError, UpdateLog, genesisHash, replay, type LogHeaderInput } from '../../../shared/log/index.js';
import { noise } from '../../../shared/noise/index.js';
import { expectSameBits } from '../../helpers/bits.js';

const header: LogHeaderInput = { jobId: 'job-1', baseSha256: 'ab'.repeat(32), distribution: 'gaussian' };
const termsFor = (round: number) => [
  { seed: BigInt(round) * 1000n + 1n, coeff: -1e-3 * (round + 1) },
  { seed: BigInt(round) * 1000n + 2n, coeff: 5e-4 },
];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mezo-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function writeLog(path: string, count: number): Promise<UpdateLog> {
  const log = await UpdateLog.open(path, header);
  for (let round = 0; round < count; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
  return log;
}

describe('update log', () => {
  it('chains entries: versions count up, each prevHash is the previous hash, hashes are reproducible', async () => {
    const log = await writeLog(join(dir, 'a.log'), 5);
    const entries = log.entries();
    expect(entries.map((e) => e.version)).toEqual([1, 2, 3, 4, 5]);
    expect(entries[0]!.prevHash).toBe(genesisHash(log.header));
    for (let v = 1; v < 5; v++) expect(entries[v]!.prevHash).toBe(entries[v - 1]!.hash);
    expect(log.headHash).toBe(entries[4]!.hash);
    // Same header and inputs in memory: the same hashes, so any replica can audit any other.
    const memory = UpdateLog.inMemory(header);
    for (let round = 0; round < 5; round++) await memory.append({ round, lr: 1e-3, terms: termsFor(round) });
    expect(memory.headHash).toBe(log.headHash);
    await log.close();
  });

  it('pins the canonical encoding with known-answer hashes (computed independently from the byte layout)', async () => {
    const log = UpdateLog.inMemory({ jobId: 'kat', baseSha256: '00'.repeat(32), distribution: 'rademacher' });
    expect(log.genesisHash).toBe('dab1d9f5e93fb03029ac5fa3e2cfcb26d3a816f175582ba52e38f0163fad43df');
    const entry = await log.append({ round: 7, lr: 0.5, terms: [{ seed: 2n ** 64n - 1n, coeff: 0.25 }, { seed: 0, coeff: -2 }] });
    expect(entry.hash).toBe('5e8a3d15e2157a650efcacd54097eee34beb498d4a6d60afbd98e8baa8d640d4');
    const decaying = UpdateLog.inMemory({
      jobId: 'kat',
      baseSha256: '00'.repeat(32),
      distribution: 'gaussian',
      decayRanges: [
        [0, 10],
        [20, 30],
      ],
    });
    expect(decaying.genesisHash).toBe('e0c60565de6859aa183d8369aa974462f6c96fdc84b7bcf0d5bec1bc89e19f74');
    const decayed = await decaying.append({ round: 0, lr: 0.5, decay: 0.99, terms: [{ seed: 5n, coeff: 0.25 }] });
    expect(decayed.decay).toBe(Math.fround(0.99));
    expect(decayed.hash).toBe('cb2421bee8470abf1b30ccb4ad4102482652777dc574df70654f4e9553fcf58b');
  });

  it('validates the header and the decay multiplier, naming the field', async () => {
    expect(() => UpdateLog.inMemory({ ...header, jobId: 'bad id' })).toThrow(/log header: jobId: jobId must be/);
    expect(() => UpdateLog.inMemory({ ...header, baseSha256: 'xyz' })).toThrow(/baseSha256/);
    expect(() => UpdateLog.inMemory({ ...header, decayRanges: [[5, 3]] })).toThrow(/decayRanges must be sorted/);
    expect(() =>
      UpdateLog.inMemory({
        ...header,
        decayRanges: [
          [0, 10],
          [5, 20],
        ],
      }),
    ).toThrow(/decayRanges/);
    const log = UpdateLog.inMemory(header);
    await expect(log.append({ round: 0, lr: 1, decay: 1.5, terms: [] })).rejects.toThrow(/entry\.decay must be a binary32 value in \(0, 1\]/);
    await expect(log.append({ round: 0, lr: 1, decay: 0, terms: [] })).rejects.toThrow(/entry\.decay/);
    expect(log.version).toBe(0);
  });

  it('stores seeds as bigints and coefficients as the float32 the kernel applies', async () => {
    const log = UpdateLog.inMemory(header);
    const entry = await log.append({ round: 0, lr: 1, terms: [{ seed: '42', coeff: 0.1 }] });
    expect(entry.terms).toEqual([{ seed: 42n, coeff: Math.fround(0.1) }]);
  });

  it('reopens with the same entries and continues the chain', async () => {
    const path = join(dir, 'b.log');
    const first = await writeLog(path, 3);
    const head = first.headHash;
    await first.close();
    const reopened = await UpdateLog.open(path, header);
    expect(reopened.recovery).toBeUndefined();
    expect(reopened.version).toBe(3);
    expect(reopened.headHash).toBe(head);
    const next = await reopened.append({ round: 3, lr: 1e-3, terms: termsFor(3) });
    expect(next.prevHash).toBe(head);
    await reopened.close();
    const again = await UpdateLog.open(path, header);
    expect(again.version).toBe(4);
    await again.close();
  });

  it('refuses a log written for another job or base', async () => {
    const path = join(dir, 'c.log');
    await (await writeLog(path, 1)).close();
    await expect(UpdateLog.open(path, { ...header, jobId: 'other' })).rejects.toThrow(LogCorruptError);
    await expect(UpdateLog.open(path, { ...header, baseSha256: 'cd'.repeat(32) })).rejects.toThrow(/log belongs to/);
  });

  it('truncates a torn final record to the last whole entry, reports it, and appends after it', async () => {
    const path = join(dir, 'd.log');
    await (await writeLog(path, 4)).close();
    const fullSize = statSync(path).size;
    const three = await UpdateLog.open(path, header);
    const headAfterThree = three.entries(0, 3)[2]!.hash;
    await three.close();
    // Cut inside the fourth record at several places, and also garble its last byte.
    for (const cut of [1, 3, 20, 60]) {
      const copy = join(dir, `torn-${cut}.log`);
      writeFileSync(copy, readFileSync(path).subarray(0, fullSize - cut));
      const log = await UpdateLog.open(copy, header);
      expect(log.version).toBe(3);
      expect(log.headHash).toBe(headAfterThree);
      expect(log.recovery?.keptEntries).toBe(3);
      expect(log.recovery!.truncatedBytes).toBeGreaterThan(0);
      const appended = await log.append({ round: 99, lr: 1e-3, terms: termsFor(99) });
      expect(appended.version).toBe(4);
      expect(appended.prevHash).toBe(headAfterThree);
      await log.close();
      const reread = await UpdateLog.open(copy, header);
      expect(reread.recovery).toBeUndefined();
      expect(reread.version).toBe(4);
      await reread.close();
    }
    const garbled = readFileSync(path);
    // The last byte is the record's signature length (0: unsigned); the one before it ends the checksum.
    garbled[garbled.length - 2] = garbled[garbled.length - 2]! ^ 0xff;
    writeFileSync(join(dir, 'garbled.log'), garbled);
    const log = await UpdateLog.open(join(dir, 'garbled.log'), header);
    expect(log.version).toBe(3);
    expect(log.recovery?.reason).toMatch(/checksum mismatch in the final record/);
    await log.close();
  });

  it('rejects corruption before the tail instead of silently dropping history', async () => {
    const path = join(dir, 'e.log');
    await (await writeLog(path, 5)).close();
    const bytes = readFileSync(path);
    const log = UpdateLog.inMemory(header);
    await log.append({ round: 0, lr: 1e-3, terms: termsFor(0) });
    // Flip one byte inside the second record's payload (header + first record come before it).
    const headerBytes = 8 + 4 + bytes.readUInt32LE(8) + 32;
    const firstRecord = 4 + bytes.readUInt32LE(headerBytes) + 32;
    bytes[headerBytes + firstRecord + 10] = bytes[headerBytes + firstRecord + 10]! ^ 0x01;
    writeFileSync(path, bytes);
    await expect(UpdateLog.open(path, header)).rejects.toThrow(/entry 2 at byte \d+ fails its checksum/);
    writeFileSync(path, 'NOTALOG!');
    await expect(UpdateLog.open(path, header)).rejects.toThrow(/not a mezo update log/);
  });

  it('rejects invalid terms without writing anything', async () => {
    const path = join(dir, 'f.log');
    const log = await writeLog(path, 2);
    const size = statSync(path).size;
    await expect(log.append({ round: 2, lr: 1e-3, terms: [{ seed: 1n, coeff: Number.NaN }] })).rejects.toThrow(
      /terms\[0\]\.coeff must be finite/,
    );
    await expect(log.append({ round: 2, lr: 1e-3, terms: [{ seed: -1n, coeff: 1 }] })).rejects.toThrow(/terms\[0\]\.seed/);
    await expect(log.append({ round: -1, lr: 1e-3, terms: [] })).rejects.toThrow(/entry\.round/);
    expect(log.version).toBe(2);
    expect(statSync(path).size).toBe(size);
    // The queue is not poisoned by a rejected append.
    expect((await log.append({ round: 2, lr: 1e-3, terms: termsFor(2) })).version).toBe(3);
    await log.close();
  });

  it('keeps every acknowledged append when the writer is killed with SIGKILL', async () => {
    const path = join(dir, 'g.log');
    const script = join(dir, 'writer.mjs');
    const moduleUrl = new URL('../../../dist/shared/log/index.js', import.meta.url).href;
    writeFileSync(
      script,
      `import { UpdateLog } from ${JSON.stringify(moduleUrl)};
       const log = await UpdateLog.open(process.argv[2], JSON.parse(process.argv[3]));
       for (let round = 0; ; round++) {
         await log.append({ round, lr: 1e-3, terms: [{ seed: BigInt(round), coeff: 1e-3 }] });
         process.stdout.write(round + '\\n');
       }`,
    );
    const child = spawn(process.execPath, [script, path, JSON.stringify(header)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MEZO_LOG_LEVEL: 'silent' },
    });
    let acknowledged = -1;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = chunk.toString().trim().split('\n');
        acknowledged = Number(lines.at(-1));
        if (acknowledged >= 50) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    const log = await UpdateLog.open(path, header);
    expect(log.version).toBeGreaterThanOrEqual(acknowledged + 1);
    expect(log.entries().every((e, i) => e.round === i)).toBe(true);
    await log.close();
  });

  it('replay applies decay to the decay ranges before the entry terms, in order', async () => {
    const ranges: Array<[number, number]> = [
      [100, 2000],
      [5000, 6000],
    ];
    const log = UpdateLog.inMemory({ ...header, decayRanges: ranges });
    for (let round = 0; round < 20; round++) {
      await log.append({ round, lr: 1e-3, decay: round % 3 === 0 ? 0.999 : 1, terms: termsFor(round) });
    }
    const base = new Float32Array(7000);
    noise.sample(base, 6n);
    const replayed = base.slice();
    replay(noise, replayed, log.entries(), 'gaussian', { decayRanges: ranges });
    const manual = base.slice();
    for (const entry of log.entries()) {
      if (entry.decay !== 1) {
        for (const [start, end] of ranges) for (let i = start; i < end; i++) manual[i] = Math.fround(manual[i]! * entry.decay);
      }
      for (const t of entry.terms) noise.perturb(manual, t.seed, t.coeff);
    }
    expectSameBits(replayed, manual, 'replay with decay');
    expect(() => replay(noise, base.slice(), log.entries(), 'gaussian')).toThrow(/no decay ranges were given/);
  });

  it('replay of fused entries equals applying every term as its own perturb', async () => {
    const log = UpdateLog.inMemory(header);
    for (let round = 0; round < 300; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    const base = new Float32Array(10_001);
    noise.sample(base, 5n);
    const fused = base.slice();
    replay(noise, fused, log.entries(), 'gaussian');
    const oneByOne = base.slice();
    for (const entry of log.entries()) for (const t of entry.terms) noise.perturb(oneByOne, t.seed, t.coeff);
    expectSameBits(fused, oneByOne, 'replay');
    // Replaying in two halves gives the same weights as one go.
    const halves = base.slice();
    replay(noise, halves, log.entries(0, 150), 'gaussian');
    replay(noise, halves, log.entries(150), 'gaussian');
    expectSameBits(halves, fused, 'replay in halves');
  });
});
