/** The low-rank distribution in the Join answer: the LOWRANK enum value and its rank, through protobuf. */
import { describe, expect, it } from 'vitest';
import { MessageValidationError, decodeJoinAccepted, encodeJoinAccepted, loadProtocol } from '../../../shared/transport/index.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const sha = 'ef'.repeat(32);
const service = () => loadProtocol().coordinator.service;
const overJoin = (wire: Record<string, unknown>) => service().Join!.responseDeserialize(service().Join!.responseSerialize(wire));

function errorOf(fn: () => unknown): MessageValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MessageValidationError);
    return err as MessageValidationError;
  }
  throw new Error('expected a validation error');
}

describe('a low-rank job on the wire', () => {
  it('carries LOWRANK and its rank through protobuf; other distributions carry no rank', () => {
    const lowrank = { ...joinAcceptedFixture('lozo', sha), distribution: 'lowrank' as const, rank: 4 };
    expect(decodeJoinAccepted(overJoin(encodeJoinAccepted(lowrank)))).toMatchObject({ distribution: 'lowrank', rank: 4 });
    expect(decodeJoinAccepted(encodeJoinAccepted(lowrank))).toEqual(lowrank);
    const gaussian = joinAcceptedFixture('lozo', sha);
    const decoded = decodeJoinAccepted(overJoin(encodeJoinAccepted(gaussian)));
    expect(decoded.distribution).toBe('gaussian');
    expect(decoded.rank).toBeUndefined();
  });

  it('refuses a missing, zero or too large rank with LOWRANK, and a rank with another distribution, naming the field', () => {
    const wire = encodeJoinAccepted({ ...joinAcceptedFixture('lozo', sha), distribution: 'lowrank', rank: 4 });
    for (const rank of [undefined, 0, 65]) {
      const bad = { ...wire, rank };
      const err = errorOf(() => decodeJoinAccepted(overJoin(bad)));
      expect(err.field).toBe('joinAccepted.rank');
      expect(err.message).toMatch(/LOWRANK/);
    }
    expect(errorOf(() => decodeJoinAccepted({ ...wire, rank: 2.5 })).field).toBe('joinAccepted.rank');
    const gaussianWithRank = { ...encodeJoinAccepted(joinAcceptedFixture('lozo', sha)), rank: 3 };
    expect(errorOf(() => decodeJoinAccepted(overJoin(gaussianWithRank))).field).toBe('joinAccepted.rank');
    expect(errorOf(() => decodeJoinAccepted({ ...wire, distribution: 'SPARSE' })).field).toBe('joinAccepted.distribution');
  });
});
