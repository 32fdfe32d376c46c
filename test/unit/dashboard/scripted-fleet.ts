/**
 * A coordinator with scripted in-memory agents for the dashboard tests: each agent answers every task with
 * scalars consistent with its losses, so the coordinator accepts them, and the sign of its g is chosen per agent.
 */
import { Coordinator, type CoordinatorInit } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { slabSha256 } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport, type ClientSession } from '../../../shared/transport/index.js';
import { joinScriptedAgent } from '../../helpers/scripted-agent.js';

export const base = new Float32Array(64).map((_, i) => i / 64);
export const baseSha256 = slabSha256(base);

export interface ScriptedAgent {
  id: string;
  session: ClientSession;
}

/** Joins and answers tasks: L+ − L− = sign·(1 + k/10) on the k-th task, so g's sign is `sign`. */
export async function scriptedAgent(transport: InMemoryTransport, id: string, sign: 1 | -1): Promise<ScriptedAgent> {
  let k = 0;
  const { session } = await joinScriptedAgent(transport, { agentId: id, baseSha256 }, ({ round, attempt, seeds, epsilon }, session) => {
    const diff = sign * (1 + k++ / 10);
    const lossPlus = seeds.map(() => 2 + diff / 2);
    const lossMinus = seeds.map(() => 2 - diff / 2);
    const g = seeds.map((_, i) => (lossPlus[i]! - lossMinus[i]!) / (2 * epsilon));
    session.send({ kind: 'result', result: { round, attempt, seeds, g, lossPlus, lossMinus, sampleCount: 1 } });
  });
  return { id, session };
}

export function scriptedCoordinator(transport: InMemoryTransport, options: CoordinatorInit['options'], jobId = 'dash'): Coordinator {
  const log = UpdateLog.inMemory({ jobId, baseSha256, distribution: 'gaussian' });
  return new Coordinator({ log, baseSlab: base, engine: noise, transport, options: { jobId, heartbeatMs: 50, deadlineMs: 2000, ...options } });
}

export async function until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Reads server-sent events from a fetch response body until `stop` says enough (or the stream ends). */
export async function readEvents(
  response: Response,
  stop: (events: Array<{ event: string; data: unknown }>) => boolean,
  timeoutMs = 10_000,
): Promise<Array<{ event: string; data: unknown }>> {
  const events: Array<{ event: string; data: unknown }> = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (!stop(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return events;
}
