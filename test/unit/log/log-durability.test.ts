import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCorruptError, LogSigner, LogVerifier, UpdateLog, type LogHeaderInput } from '../../../shared/log/index.js';

const header: LogHeaderInput = { jobId: 'durable', baseSha256: 'cd'.repeat(32), distribution: 'gaussian' };
const termsFor = (round: number) => [{ seed: BigInt(round) + 1n, coeff: 1e-3 * (round + 1) }];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mezo-durable-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a script that appends under a file-size limit (RLIMIT_FSIZE, via the shell's ulimit) until an append fails. */
function appendUnderSizeLimit(path: string, limitKiB: number): Promise<{ acknowledged: number; errors: string[] }> {
  const script = join(dir, 'limited-writer.mjs');
  const moduleUrl = new URL('../../../dist/shared/log/index.js', import.meta.url).href;
  writeFileSync(
    script,
    `import { UpdateLog } from ${JSON.stringify(moduleUrl)};
     const log = await UpdateLog.open(process.argv[2], JSON.parse(process.argv[3]));
     for (let round = 0; ; round++) {
       try {
         await log.append({ round, lr: 1e-3, terms: [{ seed: BigInt(round) + 1n, coeff: 1e-3 }] });
         process.stdout.write('ok ' + log.version + '\\n');
       } catch (err) {
         process.stdout.write('error ' + err.name + ' ' + err.message.replace(/\\n/g, ' ') + '\\n');
         // The log refuses to go on after a failed write: the next append fails without writing.
         await log.append({ round: round + 1, lr: 1e-3, terms: [{ seed: 1n, coeff: 1e-3 }] }).catch((again) =>
           process.stdout.write('error ' + again.name + ' ' + again.message + '\\n'));
         break;
       }
     }`,
  );
  // bash's ulimit -f counts 1024-byte blocks; node ignores SIGXFSZ, so a write past the limit is short or EFBIG.
  const child = spawn('bash', ['-c', `ulimit -f ${limitKiB} && exec "$0" "$@"`, process.execPath, script, path, JSON.stringify(header)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MEZO_LOG_LEVEL: 'silent' },
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) =>
    child.on('exit', () => {
      const lines = out.trim().split('\n');
      const acknowledged = Math.max(0, ...lines.filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3))));
      resolve({ acknowledged, errors: lines.filter((l) => l.startsWith('error ')) });
    }),
  );
}

describe('update log durability', () => {
  it('under a file-size limit, rejects the append that did not fit whole and keeps every acknowledged entry', async () => {
    const path = join(dir, 'limited.log');
    const { acknowledged, errors } = await appendUnderSizeLimit(path, 4);
    expect(acknowledged).toBeGreaterThan(10);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^error LogDurabilityError .*appending entry \d+ failed, so it is not durable: .*EFBIG/);
    expect(errors[0]).toContain(`appending entry ${acknowledged + 1}`);
    expect(errors[1]).toMatch(/^error LogDurabilityError .*an earlier write failed/);
    expect(statSync(path).size).toBeLessThanOrEqual(4096);
    // Reopened: exactly the acknowledged entries, whatever part of the failed record reached the file.
    const log = await UpdateLog.open(path, header);
    expect(log.version).toBe(acknowledged);
    expect(log.entries().map((e) => e.round)).toEqual(Array.from({ length: acknowledged }, (_, i) => i));
    expect((await log.append({ round: acknowledged, lr: 1e-3, terms: termsFor(acknowledged) })).version).toBe(acknowledged + 1);
    await log.close();
  });

  it('recreates a log whose header a crash cut short, and refuses any other broken header', async () => {
    const path = join(dir, 'full.log');
    await (await UpdateLog.open(path, header)).close();
    const full = readFileSync(path);
    for (const cut of [1, 5, 8, 11, 20, full.length - 1]) {
      const copy = join(dir, `header-${cut}.log`);
      writeFileSync(copy, full.subarray(0, cut));
      const log = await UpdateLog.open(copy, header);
      expect(log.version).toBe(0);
      expect(log.recovery?.reason).toMatch(/header was cut short/);
      await log.append({ round: 0, lr: 1e-3, terms: termsFor(0) });
      await log.close();
      const reread = await UpdateLog.open(copy, header);
      expect(reread.version).toBe(1);
      expect(reread.recovery).toBeUndefined();
      await reread.close();
    }
    // The file's size reached the disk before its data: zeros after the written part.
    const zeros = join(dir, 'zeros.log');
    writeFileSync(zeros, Buffer.concat([full.subarray(0, 10), Buffer.alloc(30)]));
    expect((await UpdateLog.open(zeros, header)).recovery?.reason).toMatch(/header was cut short/);
    // Another job's header, cut short, is not this log's: refused, not overwritten.
    const other = join(dir, 'other.log');
    await (await UpdateLog.open(other, { ...header, jobId: 'another-job' })).close();
    writeFileSync(other, readFileSync(other).subarray(0, 30));
    await expect(UpdateLog.open(other, header)).rejects.toThrow(LogCorruptError);
  });

  it('group durability writes every append and syncs at sync() and close()', async () => {
    const path = join(dir, 'group.log');
    const log = await UpdateLog.open(path, header, { durability: 'group' });
    for (let round = 0; round < 20; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    await log.sync();
    for (let round = 20; round < 30; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    await log.close();
    const reread = await UpdateLog.open(path, header);
    expect(reread.version).toBe(30);
    await reread.close();
  });

  it('group durability: a writer killed with SIGKILL leaves at least every synced entry, and a log that opens', async () => {
    const path = join(dir, 'group-killed.log');
    const script = join(dir, 'group-writer.mjs');
    const moduleUrl = new URL('../../../dist/shared/log/index.js', import.meta.url).href;
    writeFileSync(
      script,
      `import { UpdateLog } from ${JSON.stringify(moduleUrl)};
       const log = await UpdateLog.open(process.argv[2], JSON.parse(process.argv[3]), { durability: 'group' });
       for (let round = 0; ; round++) {
         await log.append({ round, lr: 1e-3, terms: [{ seed: BigInt(round) + 1n, coeff: 1e-3 }] });
         if ((round + 1) % 20 === 0) {
           await log.sync();
           process.stdout.write((round + 1) + '\\n');
         }
       }`,
    );
    const child = spawn(process.execPath, [script, path, JSON.stringify(header)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MEZO_LOG_LEVEL: 'silent' } });
    let synced = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        synced = Number(chunk.toString().trim().split('\n').at(-1));
        if (synced >= 200) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    const log = await UpdateLog.open(path, header);
    expect(log.version).toBeGreaterThanOrEqual(synced);
    expect(log.entries().every((e, i) => e.round === i)).toBe(true);
    await log.close();
  });
});

describe('update log signatures', () => {
  it('signs every record with the signer; a reopen checks them against its key', async () => {
    const signer = LogSigner.generate();
    const path = join(dir, 'signed.log');
    const log = await UpdateLog.open(path, header, { signer });
    expect(log.publicKey).toBe(signer.publicKey);
    for (let round = 0; round < 3; round++) await log.append({ round, lr: 1e-3, terms: termsFor(round) });
    await log.appendRebase({ round: 2 });
    const verifier = LogVerifier.for(signer.publicKey);
    expect(log.entries().every((e) => verifier.verify(e.hash, e.signature))).toBe(true);
    await log.close();

    const reread = await UpdateLog.open(path, header, { verifier });
    expect(reread.entries().map((e) => e.signature)).toEqual(log.entries().map((e) => e.signature));
    await reread.close();
    const stranger = LogSigner.generate();
    await expect(UpdateLog.open(path, header, { verifier: LogVerifier.for(stranger.publicKey) })).rejects.toThrow(/entry 1 is signed with another key/);
    await expect(UpdateLog.open(path, header, { signer: stranger })).rejects.toThrow(/signed with another key/);
    // A garbled signature is caught by whoever verifies.
    const bytes = readFileSync(path);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0x10;
    writeFileSync(path, bytes);
    await expect(UpdateLog.open(path, header, { verifier })).rejects.toThrow(/entry 4 is signed with another key/);
  });

  it('a replica without a signer stores the signatures it is given', async () => {
    const signer = LogSigner.generate();
    const source = UpdateLog.inMemory(header, { signer });
    const replica = await UpdateLog.open(join(dir, 'replica.log'), header);
    for (let round = 0; round < 3; round++) {
      const entry = await source.append({ round, lr: 1e-3, terms: termsFor(round) });
      expect((await replica.append({ round, lr: 1e-3, terms: termsFor(round), signature: entry.signature })).signature).toBe(entry.signature);
    }
    await replica.close();
    const reread = await UpdateLog.open(join(dir, 'replica.log'), header, { verifier: LogVerifier.for(signer.publicKey) });
    expect(reread.headHash).toBe(source.headHash);
    await reread.close();
  });

  it('migrates a format 1 log, signing its records when the opener signs', async () => {
    const path = join(dir, 'old.log');
    const writer = await UpdateLog.open(path, header);
    for (let round = 0; round < 4; round++) await writer.append({ round, lr: 1e-3, terms: termsFor(round) });
    await writer.close();
    // Format 1: magic MEZOLOG1 and records without the signature-length byte.
    const v2 = readFileSync(path);
    const headerEnd = 12 + v2.readUInt32LE(8) + 32;
    const parts = [Buffer.from('MEZOLOG1', 'latin1'), v2.subarray(8, headerEnd)];
    for (let at = headerEnd; at < v2.length; ) {
      const end = at + 4 + v2.readUInt32LE(at) + 32;
      parts.push(v2.subarray(at, end));
      at = end + 1;
    }
    writeFileSync(path, Buffer.concat(parts));
    const signer = LogSigner.generate();
    const migrated = await UpdateLog.open(path, header, { signer });
    expect(migrated.version).toBe(4);
    expect(readFileSync(path).subarray(0, 8).toString('latin1')).toBe('MEZOLOG2');
    await migrated.append({ round: 4, lr: 1e-3, terms: termsFor(4) });
    await migrated.close();
    const reread = await UpdateLog.open(path, header, { verifier: LogVerifier.for(signer.publicKey) });
    expect(reread.version).toBe(5);
    expect(reread.entries().map((e) => e.hash)).toEqual(writer.entries().map((e) => e.hash).concat(reread.entries()[4]!.hash));
    await reread.close();
  });

  it('creates the signing key file with mode 0600 and loads the same key again', async () => {
    const path = join(dir, 'keys', 'coordinator.key');
    const created = await LogSigner.loadOrCreate(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const loaded = await LogSigner.loadOrCreate(path);
    expect(loaded.publicKey).toBe(created.publicKey);
    expect(created.publicKey).toMatch(/^ed25519:[0-9a-f]{64}$/);
    writeFileSync(path, 'not a key');
    await expect(LogSigner.loadOrCreate(path)).rejects.toThrow(/not a PEM private key/);
  });
});
