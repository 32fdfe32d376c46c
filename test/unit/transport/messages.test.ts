import { describe, expect, it } from 'vitest';
import {
  MessageValidationError,
  decodeAgentMessage,
  decodeCoordinatorMessage,
  decodeFetchLogRequest,
  decodeJoinRequest,
  decodeResult,
  decodeUpdate,
  encodeAgentMessage,
  encodeCoordinatorMessage,
  encodeJoinRequest,
  MAX_SEEDS_PER_TASK,
} from '../../../shared/transport/index.js';

const sha = 'ab'.repeat(32);
const result = { round: '3', attempt: 0, seeds: ['18446744073709551615', '7'], g: [0.5, -1], lossPlus: [1, 2], lossMinus: [0.9, 2.1], sampleCount: 64 };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MessageValidationError);
    expect((err as MessageValidationError).code).toBe('INVALID_ARGUMENT');
    return (err as MessageValidationError).field;
  }
  throw new Error('expected a validation error');
}

describe('message validation', () => {
  it('decodes the wire form losslessly: 64-bit seeds as bigint, counters as numbers', () => {
    const r = decodeResult(result);
    expect(r.seeds).toEqual([(1n << 64n) - 1n, 7n]);
    expect(r.round).toBe(3);
    const join = { agentId: 'a-1', token: 't', capabilities: { memoryBytes: '1024', cores: 2, noiseImpl: 'js' }, baseSha256: sha, versionHeld: '5' };
    const decoded = decodeJoinRequest(join);
    expect(decoded).toMatchObject({ versionHeld: 5, capabilities: { memoryBytes: 1024 } });
    expect(decodeJoinRequest(encodeJoinRequest(decoded))).toEqual(decoded);
  });

  it('rejects non-finite scalars, wrong lengths and bad fields, naming the field', () => {
    expect(fieldOf(() => decodeResult({ ...result, g: [Number.NaN, 1] }))).toBe('result.g[0]');
    expect(fieldOf(() => decodeResult({ ...result, lossMinus: [1, Infinity] }))).toBe('result.lossMinus[1]');
    expect(fieldOf(() => decodeResult({ ...result, lossPlus: [1e300, 1] }))).toBe('result.lossPlus[0]');
    expect(fieldOf(() => decodeResult({ ...result, g: [1] }))).toBe('result.g');
    expect(fieldOf(() => decodeResult({ ...result, seeds: ['18446744073709551616', '1'] }))).toBe('result.seeds[0]');
    expect(fieldOf(() => decodeResult({ ...result, seeds: ['-1', '1'] }))).toBe('result.seeds[0]');
    expect(fieldOf(() => decodeResult({ ...result, sampleCount: 0 }))).toBe('result.sampleCount');
    expect(fieldOf(() => decodeResult({ ...result, round: '99999999999999999999' }))).toBe('result.round');
    expect(fieldOf(() => decodeResult(null))).toBe('result');
    const many = Array.from({ length: MAX_SEEDS_PER_TASK + 1 }, () => '1');
    expect(fieldOf(() => decodeResult({ ...result, seeds: many, g: many.map(() => 0), lossPlus: many.map(() => 0), lossMinus: many.map(() => 0) }))).toBe('result.seeds');
    expect(fieldOf(() => decodeJoinRequest({ agentId: 'bad id!', token: '', baseSha256: sha, versionHeld: '0' }))).toBe('join.agentId');
    expect(fieldOf(() => decodeJoinRequest({ agentId: 'a', token: '', baseSha256: 'xyz', versionHeld: '0' }))).toBe('join.baseSha256');
    expect(fieldOf(() => decodeFetchLogRequest({ fromVersion: '5', toVersion: '3' }))).toBe('fetchLog.toVersion');
  });

  it('validates updates: hashes, decay range, finite float32 coefficients', () => {
    const update = { round: '0', version: '1', terms: [{ seed: '1', coeff: 0.25 }], lr: 0.001, decay: 1, prevHash: sha, hash: sha };
    expect(decodeUpdate(update).terms).toEqual([{ seed: 1n, coeff: 0.25 }]);
    expect(fieldOf(() => decodeUpdate({ ...update, version: '0' }))).toBe('update.version');
    expect(fieldOf(() => decodeUpdate({ ...update, decay: 0 }))).toBe('update.decay');
    expect(fieldOf(() => decodeUpdate({ ...update, terms: [{ seed: '1', coeff: 1e39 }] }))).toBe('update.terms[0].coeff');
    expect(fieldOf(() => decodeUpdate({ ...update, hash: sha.toUpperCase() }))).toBe('update.hash');
  });

  it('decodes oneofs by their body name and round-trips the typed forms', () => {
    const task = { jobId: 'job', round: 2, attempt: 1, version: 2, seeds: [5n], epsilon: 1e-3, batchSize: 8, deadlineMs: 100 };
    const wire = encodeCoordinatorMessage({ kind: 'task', task });
    expect(decodeCoordinatorMessage({ ...wire, body: 'task', update: null, ping: null })).toEqual({ kind: 'task', task });
    expect(decodeAgentMessage(encodeAgentMessage({ kind: 'pong', nonce: 4 }))).toEqual({ kind: 'pong', nonce: 4 });
    expect(fieldOf(() => decodeAgentMessage({ result: null, heartbeat: null, pong: null }))).toBe('message.body');
    expect(fieldOf(() => decodeAgentMessage({ heartbeat: { version: '1', weightsSha256: 'nope' } }))).toBe('heartbeat.weightsSha256');
  });

  it("carries a task's estimator; unset (a peer that predates it) reads as central, an unknown one is refused", () => {
    const task = { jobId: 'job', round: 2, attempt: 1, version: 2, seeds: [5n, 6n], epsilon: 1e-3, batchSize: 8, deadlineMs: 100 };
    const wire = encodeCoordinatorMessage({ kind: 'task', task: { ...task, estimator: 'forward' } });
    expect(wire.task).toMatchObject({ estimator: 'ESTIMATOR_FORWARD' });
    const decoded = decodeCoordinatorMessage({ ...wire, body: 'task', update: null, ping: null });
    expect(decoded).toEqual({ kind: 'task', task: { ...task, estimator: 'forward' } });
    const plain = decodeCoordinatorMessage({ ...encodeCoordinatorMessage({ kind: 'task', task }), body: 'task', update: null, ping: null });
    expect(plain.kind === 'task' && plain.task.estimator).toBeUndefined();
    expect(fieldOf(() => decodeCoordinatorMessage({ ...wire, task: { ...(wire.task as object), estimator: 'ESTIMATOR_BACKWARD' }, body: 'task', update: null, ping: null }))).toBe('task.estimator');
  });
});
