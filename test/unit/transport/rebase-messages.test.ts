import { describe, expect, it } from 'vitest';
import { UpdateLog } from '../../../shared/log/index.js';
import {
  GRPC_FRAME_BYTES,
  decodeFetchLogResponse,
  decodeJoinAccepted,
  decodeUpdate,
  encodeFetchLogResponse,
  encodeJoinAccepted,
  encodeUpdate,
  entryFieldBytes,
  fetchLogBytes,
  loadProtocol,
  type JoinAccepted,
} from '../../../shared/transport/index.js';
import { fieldOf } from '../../helpers/validation-field.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const sha = 'ab'.repeat(32);

async function smallLog() {
  const log = UpdateLog.inMemory({ jobId: 'wire', baseSha256: sha, distribution: 'gaussian' });
  await log.append({ round: 0, lr: 1e-3, terms: [{ seed: 2n ** 64n - 1n, coeff: -1e-3 }, { seed: 4n, coeff: 2e-4 }] });
  await log.append({ round: 1, lr: 1e-3, terms: [{ seed: 4n, coeff: 3e-4 }] });
  await log.appendRebase({ round: 1 });
  await log.append({ round: 2, lr: 5e-4, terms: [{ seed: 9n, coeff: 1e-4 }] });
  return log;
}

describe('the Update message carries the entry kind', () => {
  it('round-trips updates (kind left unset: the bytes they always had) and rebases', async () => {
    const entries = (await smallLog()).entries();
    expect(encodeUpdate(entries[0]!)).not.toHaveProperty('kind');
    expect(encodeUpdate(entries[2]!)).toMatchObject({ kind: 'ENTRY_KIND_REBASE' });
    for (const entry of entries) expect(decodeUpdate(encodeUpdate(entry))).toEqual(entry);
    // A peer that predates the field, or sets UNSPECIFIED, sends updates.
    expect(decodeUpdate({ ...encodeUpdate(entries[0]!), kind: 'ENTRY_KIND_UNSPECIFIED' }).kind).toBe('update');
  });

  it('rejects nonsense rebases, naming the field', async () => {
    const rebase = encodeUpdate((await smallLog()).entries()[2]!) as { terms: Array<{ seed: string; coeff: number }> };
    const twice = { ...rebase, terms: [rebase.terms[0]!, rebase.terms[0]!] };
    expect(fieldOf(() => decodeUpdate(twice))).toBe('update.terms[1].seed');
    expect(fieldOf(() => decodeUpdate({ ...rebase, terms: [...rebase.terms].reverse() }))).toBe('update.terms[1].seed');
    expect(fieldOf(() => decodeUpdate({ ...rebase, lr: 1e-3 }))).toBe('update.lr');
    expect(fieldOf(() => decodeUpdate({ ...rebase, decay: 0.5 }))).toBe('update.decay');
    expect(fieldOf(() => decodeUpdate({ ...rebase, kind: 'ENTRY_KIND_SNAPSHOT' }))).toBe('update.kind');
    // Duplicate seeds stay legal in an update.
    expect(decodeUpdate({ ...twice, kind: undefined, lr: 1e-3 }).terms).toHaveLength(2);
  });

  it('goes through protobuf intact, and wire-size counts the kind field exactly', async () => {
    const log = await smallLog();
    const service = loadProtocol().coordinator.service;
    const page = { entries: log.entries(), headVersion: log.version };
    const bytes = service.FetchLog!.responseSerialize(encodeFetchLogResponse(page));
    const decoded = decodeFetchLogResponse(service.FetchLog!.responseDeserialize(bytes));
    expect(decoded.entries).toEqual(log.entries());
    const fields = log.entries().reduce((sum, e) => sum + entryFieldBytes(e), 0);
    expect(bytes.length + GRPC_FRAME_BYTES).toBe(fetchLogBytes(page.entries.length, fields, log.version));
  });
});

describe('JoinAccepted carries the last rebase version', () => {
  const accepted: JoinAccepted = { ...joinAcceptedFixture('wire', sha), currentVersion: 40, logBytes: 500, logFloor: 30, rebaseVersion: 36 };

  it('round-trips through protobuf; a floor below the rebase needs no snapshot', () => {
    const service = loadProtocol().coordinator.service;
    const wire = service.Join!.responseDeserialize(service.Join!.responseSerialize(encodeJoinAccepted(accepted)));
    expect(decodeJoinAccepted(wire)).toEqual(accepted);
  });

  it('refuses a rebase past the head and a floor neither a snapshot nor the rebase covers', () => {
    expect(fieldOf(() => decodeJoinAccepted(encodeJoinAccepted({ ...accepted, rebaseVersion: 41 })))).toBe('joinAccepted.rebaseVersion');
    expect(fieldOf(() => decodeJoinAccepted(encodeJoinAccepted({ ...accepted, logFloor: 36 })))).toBe('joinAccepted.snapshotVersion');
    expect(decodeJoinAccepted(encodeJoinAccepted({ ...accepted, logFloor: 35 })).logFloor).toBe(35);
  });
});
