/**
 * Record-level DP on the wire, through the service's own protobuf codecs: a Task's record_privacy, and a
 * private-mode Result that carries g and the sample count only (losses optional, both or none).
 */
import { describe, expect, it } from 'vitest';
import {
  decodeAgentMessage,
  decodeCoordinatorMessage,
  encodeAgentMessage,
  encodeCoordinatorMessage,
  loadProtocol,
  type Result,
  type Task,
} from '../../../shared/transport/index.js';
import { fieldOf } from '../../helpers/validation-field.js';

const service = () => loadProtocol().coordinator.service;
const upBytes = (wire: Record<string, unknown>) => service().Session!.requestSerialize(wire);
const up = (wire: Record<string, unknown>) => service().Session!.requestDeserialize(upBytes(wire));
const down = (wire: Record<string, unknown>) => service().Session!.responseDeserialize(service().Session!.responseSerialize(wire));

const task: Task = { jobId: 'job', round: 3, attempt: 0, version: 3, seeds: [5n, 6n], epsilon: 1e-3, batchSize: 32, deadlineMs: 1000 };
const result: Result = { round: 3, attempt: 0, seeds: [5n, 6n], g: [0.25, -1.5], lossPlus: [2.3, 2.4], lossMinus: [2.2, 2.5], sampleCount: 32 };

describe('record-level DP messages', () => {
  it("carries a task's record privacy, and none when the job has no record DP", () => {
    const withDp = { ...task, recordPrivacy: { clip: 4, noiseMultiplier: 1.25, privateMode: true } };
    const decoded = decodeCoordinatorMessage(down(encodeCoordinatorMessage({ kind: 'task', task: withDp })));
    expect(decoded).toEqual({ kind: 'task', task: withDp });
    const plain = decodeCoordinatorMessage(down(encodeCoordinatorMessage({ kind: 'task', task })));
    expect(plain.kind === 'task' && plain.task.recordPrivacy).toBeUndefined();
    const bad = encodeCoordinatorMessage({ kind: 'task', task: { ...withDp, recordPrivacy: { clip: 0, noiseMultiplier: 1, privateMode: false } } });
    expect(fieldOf(() => decodeCoordinatorMessage(down(bad)))).toBe('task.recordPrivacy.clip');
  });

  it('sends a private-mode result without losses: nothing on the wire, none decoded', () => {
    const { lossPlus: _p, lossMinus: _m, ...bare } = result;
    const wire = encodeAgentMessage({ kind: 'result', result: bare });
    expect(Object.keys(wire.result as object).sort()).toEqual(['attempt', 'g', 'round', 'sampleCount', 'seeds']);
    const decoded = decodeAgentMessage(up(wire));
    expect(decoded.kind).toBe('result');
    const r = (decoded as { result: Result }).result;
    expect(r.lossPlus).toBeUndefined();
    expect(r.lossMinus).toBeUndefined();
    expect(r).toEqual(bare);
    // Two seeds' losses are 32 bytes of doubles and their framing: the private result is that much smaller.
    expect(upBytes(encodeAgentMessage({ kind: 'result', result })).length - upBytes(wire).length).toBeGreaterThanOrEqual(32);
  });

  it('keeps both losses of an ordinary result', () => {
    expect(decodeAgentMessage(up(encodeAgentMessage({ kind: 'result', result })))).toEqual({ kind: 'result', result });
  });

  it('refuses a result with one loss list, or losses for some seeds only, naming the field', () => {
    const onlyPlus = encodeAgentMessage({ kind: 'result', result: { ...result, lossMinus: undefined } });
    expect(fieldOf(() => decodeAgentMessage(up(onlyPlus)))).toBe('result.lossMinus');
    const short = encodeAgentMessage({ kind: 'result', result: { ...result, lossPlus: [2.3] } });
    expect(fieldOf(() => decodeAgentMessage(up(short)))).toBe('result.lossPlus');
    const noG = encodeAgentMessage({ kind: 'result', result: { ...result, g: [] } });
    expect(fieldOf(() => decodeAgentMessage(up(noG)))).toBe('result.g');
  });
});

describe("the agent's privacy floor on the wire", () => {
  it("declines with reason PRIVACY, and the floor names what falls short", async () => {
    const { belowPrivacyFloor, privacyFloorSchema } = await import('../../../shared/privacy/record-dp.js');
    const decline = { round: 2, attempt: 1, reason: 'privacy' as const };
    const wire = encodeAgentMessage({ kind: 'decline', decline });
    expect((wire.decline as { reason: string }).reason).toBe('DECLINE_REASON_PRIVACY');
    expect(decodeAgentMessage(up(wire))).toEqual({ kind: 'decline', decline });
    const floor = privacyFloorSchema.parse({ maxClip: 8, minNoiseMultiplier: 1 });
    expect(belowPrivacyFloor(floor, undefined)).toMatch(/no record-level DP/);
    expect(belowPrivacyFloor(floor, { clip: 16, noiseMultiplier: 2, privateMode: true })).toMatch(/clip 16/);
    expect(belowPrivacyFloor(floor, { clip: 8, noiseMultiplier: 0.5, privateMode: true })).toMatch(/noise multiplier 0.5/);
    expect(belowPrivacyFloor(floor, { clip: 8, noiseMultiplier: 1, privateMode: false })).toBeUndefined();
    expect(belowPrivacyFloor(privacyFloorSchema.parse({ requirePrivate: true }), { clip: 8, noiseMultiplier: 1, privateMode: false })).toMatch(/private mode/);
    expect(privacyFloorSchema.safeParse({}).error?.issues[0]?.path).toEqual(['minNoiseMultiplier']);
  });
});
