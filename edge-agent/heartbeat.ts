/**
 * The agent's heartbeats: every heartbeatMs (default 2 s) its version, its weights' SHA-256 (so the
 * coordinator can audit replicas) and, with device limits, whether it is busy. A heartbeat is queued behind the
 * work in hand (the hash must be of weights between updates), and at most one waits at a time.
 */
import type { AgentMessage } from '../shared/transport/index.js';
import type { MezoBackend } from './mezo-backend.js';

export interface HeartbeatSource {
  /** The weights to report: the backend and the version it holds. */
  job(): { backend: MezoBackend; version: number };
  /** The device's busy state, when the agent has device limits. */
  busy: (() => boolean) | undefined;
  /** Runs `work` after the work already queued. */
  enqueue(work: () => Promise<void>): Promise<void>;
  send(message: AgentMessage): void;
}

/** Starts the heartbeats of one session; the returned function stops them. */
export function startHeartbeats(periodMs: number, source: HeartbeatSource): () => void {
  let heartbeatQueued = false;
  const heartbeat = setInterval(() => {
    if (heartbeatQueued) return;
    heartbeatQueued = true;
    source.enqueue(async () => {
      heartbeatQueued = false;
      const { backend, version } = source.job();
      const busy = source.busy ? { busy: source.busy() } : {};
      source.send({ kind: 'heartbeat', heartbeat: { version, weightsSha256: await backend.sha256(), ...busy } });
    });
  }, periodMs);
  return () => clearInterval(heartbeat);
}
