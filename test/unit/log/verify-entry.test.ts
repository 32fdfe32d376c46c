import { describe, expect, it } from 'vitest';
import { LogSigner, LogVerifier, UpdateLog, verifyEntry, type LogHeaderInput } from '../../../shared/log/index.js';

const header: LogHeaderInput = { jobId: 'verify-entry', baseSha256: 'ab'.repeat(32), distribution: 'gaussian' };

describe('verifyEntry', () => {
  it("accepts the signer's record and names each fault: unsigned, another key, contents", async () => {
    const signer = LogSigner.generate();
    const verifier = LogVerifier.for(signer.publicKey);
    const entry = await UpdateLog.inMemory(header, { signer }).append({ round: 0, lr: 1e-3, terms: [{ seed: 7n, coeff: -2e-4 }] });
    expect(verifyEntry(entry, verifier)).toBeUndefined();

    const { signature: _signature, ...unsigned } = entry;
    expect(verifyEntry(unsigned, verifier)).toEqual({ kind: 'unsigned', reason: 'not signed' });
    // Without a key there is no signature to check, but the contents still must match the hash.
    expect(verifyEntry(unsigned, undefined)).toBeUndefined();

    const foreign = { ...entry, signature: LogSigner.generate().sign(entry.hash) };
    expect(verifyEntry(foreign, verifier)).toEqual({ kind: 'foreign-key', reason: 'signed with another key' });

    // A term changed after signing: the signature holds for the hash, the hash no longer for the contents.
    const altered = { ...entry, terms: [{ seed: 7n, coeff: 2e-4 }] };
    expect(verifyEntry(altered, verifier)).toEqual({ kind: 'contents', reason: 'hash does not match its contents' });
    expect(verifyEntry(altered, undefined)?.kind).toBe('contents');
    // A reader that checked the hash against the stored payload skips the second encoding.
    expect(verifyEntry(altered, verifier, { contents: false })).toBeUndefined();
  });
});
