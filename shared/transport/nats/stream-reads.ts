/**
 * FetchLog straight from the job's JetStream log stream (the agent's `readLogFromStream` option): the records
 * are read and checked by the update log's own reader (log/jetstream-log.ts: whole, chained and, with the log's
 * key, signed), then put through the wire form and its schema like any FetchLog response. A shortcut only:
 * whenever the stream cannot answer the whole page, the caller asks the coordinator.
 */
import type { NatsConnection } from 'nats';
import { readLogStream } from '../../log/jetstream-log.js';
import { decodeFetchLogResponse, encodeFetchLogResponse, type FetchLogRequest, type FetchLogResponse } from '../messages.js';
import type { JobSubjects } from './subjects.js';

/** The page `request` asks for, read from the stream; undefined when the stream does not hold all of it. */
export async function readFromLogStream(
  nc: NatsConnection,
  subjects: JobSubjects,
  request: FetchLogRequest,
  timeoutMs: number,
  publicKey: string | undefined,
): Promise<FetchLogResponse | undefined> {
  const { entries, head } = await readLogStream(nc, subjects, request.fromVersion, request.toVersion, {
    timeoutMs,
    ...(publicKey ? { publicKey } : {}),
  });
  const to = request.toVersion === 0 ? head : request.toVersion;
  // Past the head the stream knows (a replica may lag), or an empty page: the coordinator answers instead.
  if (request.fromVersion <= head && to <= head && (entries.length > 0 || request.fromVersion >= to)) {
    // Through the wire form and its schema, like any FetchLog response.
    return decodeFetchLogResponse(encodeFetchLogResponse({ entries, headVersion: head }));
  }
  return undefined;
}
