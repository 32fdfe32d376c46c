/** The JobEnd message and the Join answer's job_end field, through the service's own protobuf codecs. */
import { describe, expect, it } from 'vitest';
import {
  decodeCoordinatorMessage,
  decodeJoinAccepted,
  encodeCoordinatorMessage,
  encodeJoinAccepted,
  loadProtocol,
  type JobEnd,
} from '../../../shared/transport/index.js';
import { fieldOf } from '../../helpers/validation-field.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const sha = 'cd'.repeat(32);
const service = () => loadProtocol().coordinator.service;
/** What a receiver decodes from the bytes a sender puts on the wire. */
const overSession = (wire: Record<string, unknown>) => service().Session!.responseDeserialize(service().Session!.responseSerialize(wire));
const overJoin = (wire: Record<string, unknown>) => service().Join!.responseDeserialize(service().Join!.responseSerialize(wire));

describe('the end of a job on the wire', () => {
  const completed: JobEnd = { jobId: 'demo', reason: 'completed', version: 200, headHash: sha };

  it('carries a JobEnd on the session, for either reason', () => {
    for (const jobEnd of [completed, { ...completed, reason: 'stopped' as const, version: 17 }]) {
      expect(decodeCoordinatorMessage(overSession(encodeCoordinatorMessage({ kind: 'jobEnd', jobEnd })))).toEqual({ kind: 'jobEnd', jobEnd });
    }
  });

  it('says in the Join answer that the job has ended, and nothing when it runs', () => {
    const running = joinAcceptedFixture('demo', sha);
    expect(decodeJoinAccepted(overJoin(encodeJoinAccepted(running))).jobEnd).toBeUndefined();
    const ended = { ...running, currentVersion: 200, jobEnd: completed };
    expect(decodeJoinAccepted(overJoin(encodeJoinAccepted(ended))).jobEnd).toEqual(completed);
  });

  it('refuses a JobEnd without a reason or with a bad head hash, naming the field', () => {
    const wire = encodeCoordinatorMessage({ kind: 'jobEnd', jobEnd: completed });
    const jobEnd = wire.jobEnd as Record<string, unknown>;
    expect(fieldOf(() => decodeCoordinatorMessage(overSession({ jobEnd: { ...jobEnd, reason: 'JOB_END_REASON_UNSPECIFIED' } })))).toBe('jobEnd.reason');
    expect(fieldOf(() => decodeCoordinatorMessage({ jobEnd: { ...jobEnd, headHash: 'nope' } }))).toBe('jobEnd.headHash');
    const join = encodeJoinAccepted({ ...joinAcceptedFixture('demo', sha), jobEnd: completed });
    expect(fieldOf(() => decodeJoinAccepted({ ...join, jobEnd: { ...jobEnd, jobId: 'bad id' } }))).toBe('joinAccepted.jobEnd.jobId');
  });
});
