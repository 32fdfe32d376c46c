/**
 * The names one job uses on a NATS server that more than one layer needs: the subject root `<prefix>.<job>`,
 * the way ids become subject tokens, and the JetStream stream that holds the job's update log with its
 * subjects. The update log (log/jetstream-log.ts) and the NATS transport (transport/nats/subjects.ts, which
 * adds the request, session and broadcast subjects under the same root) both build on it, so neither imports
 * the other's naming.
 */

export const DEFAULT_SUBJECT_PREFIX = 'mezo';

const JOB_ID = /^[A-Za-z0-9._-]{1,128}$/;
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * An id as one subject token. '.' separates tokens in NATS, so it is written '~', which neither job nor agent
 * ids may contain; the mapping is one-to-one.
 */
export function subjectToken(id: string): string {
  return id.replaceAll('.', '~');
}

export function fromSubjectToken(token: string): string {
  return token.replaceAll('~', '.');
}

/** The JetStream stream name of a job's log: `<prefix>-log-<job>` with '.' written '~' (stream names hold no dots). */
export function logStreamName(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): string {
  return `${subjectToken(prefix)}-log-${subjectToken(jobId)}`;
}

/** What the update log needs of a job's subject tree. */
export interface LogStreamSubjects {
  readonly jobId: string;
  readonly prefix: string;
  /** `<prefix>.<job>` */
  readonly root: string;
  /** The JetStream stream holding the job's update log. */
  readonly stream: string;
  readonly logHeader: string;
  readonly logEntry: string;
  readonly logAll: string;
}

/** The job's root and log stream names; the job id and prefix are checked here, once for every layer. */
export function logStreamSubjects(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): LogStreamSubjects {
  if (!JOB_ID.test(jobId)) throw new RangeError(`nats subjects: job id must be 1-128 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(jobId)}`);
  if (!PREFIX.test(prefix)) throw new RangeError(`nats subjects: prefix must be dot-separated tokens of A-Z a-z 0-9 _ -, got ${JSON.stringify(prefix)}`);
  const root = `${prefix}.${subjectToken(jobId)}`;
  return {
    jobId,
    prefix,
    root,
    stream: logStreamName(jobId, prefix),
    logHeader: `${root}.log.header`,
    logEntry: `${root}.log.entry`,
    logAll: `${root}.log.>`,
  };
}
