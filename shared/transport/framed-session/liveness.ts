/**
 * Liveness of agent-side sessions on a link that can lose frames silently (a relay, a dropped socket): a
 * session that heard nothing from the coordinator within its window (the coordinator pings every heartbeat
 * period) is ended with UNAVAILABLE. One sweeper serves many sessions, ticking at a fifth of the shortest
 * window.
 */
import { TransportError } from '../errors.js';

export interface LiveSession {
  readonly lastHeard: number;
  readonly livenessMs: number;
  /** Set by the sweeper after a stall of this process, so the stall does not count as the coordinator's silence. */
  heard(): void;
  abort(error: TransportError): void;
}

/** Heartbeat periods of silence after which a session is over, unless the link says otherwise. */
export const DEFAULT_LIVENESS_PERIODS = 5;
/** The liveness window never drops below this, so a busy event loop does not end healthy sessions. */
export const MIN_LIVENESS_MS = 1000;
/** The heartbeat period assumed before a Join has told the job's own. */
const DEFAULT_HEARTBEAT_MS = 2000;

/**
 * A session's liveness window: `fixedMs` when given, else `periods` (default 5) heartbeat periods of the job
 * (`heartbeatMs`, 0 before a Join), and never under MIN_LIVENESS_MS.
 */
export function livenessWindowMs(heartbeatMs: number, periods = DEFAULT_LIVENESS_PERIODS, fixedMs?: number): number {
  return fixedMs ?? Math.max(MIN_LIVENESS_MS, periods * (heartbeatMs || DEFAULT_HEARTBEAT_MS));
}

/** A sweep tick never comes more often than this. */
const MIN_SWEEP_MS = 10;

export class LivenessSweeper<S extends LiveSession> {
  private timer: ReturnType<typeof setInterval> | undefined;
  private sweepMs = Infinity;
  private lastSweep = 0;

  /** `sessions` gives the sessions to watch at each sweep. */
  constructor(private readonly sessions: () => Iterable<S>) {}

  /** Makes sure the sweep ticks often enough for `livenessMs` (a window of Infinity needs no sweep). */
  watch(livenessMs: number): void {
    if (!Number.isFinite(livenessMs)) return;
    const sweepMs = Math.max(MIN_SWEEP_MS, Math.floor(livenessMs / 5));
    if (sweepMs >= this.sweepMs) return;
    this.sweepMs = sweepMs;
    if (this.timer) clearInterval(this.timer);
    this.lastSweep = Date.now();
    this.timer = setInterval(() => this.sweep(), sweepMs);
    // Optional: a browser's interval handle is a number, with nothing to unref.
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sweepMs = Infinity;
  }

  private sweep(): void {
    const now = Date.now();
    const stalled = now - this.lastSweep > 2 * this.sweepMs + 100;
    this.lastSweep = now;
    if (stalled) {
      // This process was not running (a long task on the event loop): the silence is ours, not the
      // coordinator's. Start every window afresh rather than end healthy sessions.
      for (const session of this.sessions()) session.heard();
      return;
    }
    // Decide after the poll phase has read what already arrived on the socket.
    setImmediate(() => this.expire());
  }

  private expire(): void {
    const now = Date.now();
    for (const session of [...this.sessions()]) {
      if (now - session.lastHeard > session.livenessMs) {
        session.abort(new TransportError('UNAVAILABLE', `nothing from the coordinator for ${session.livenessMs} ms`));
      }
    }
  }
}
