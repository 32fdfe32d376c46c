import type { Traffic } from './transport.js';

/** Calls the coordinator refused, counted in total: never per claimed id (anyone may claim any id). */
export interface RefusedTraffic {
  calls: number;
  bytesUp: number;
}

/**
 * Per-agent byte counters behind Listener.traffic(). Only agents the coordinator accepted a call from have
 * counters (`admit`); bytes of any other caller go to one total, so callers with made-up ids cost no memory.
 */
export class TrafficMeter {
  private readonly byAgent = new Map<string, Traffic>();
  private readonly refusedTotals: RefusedTraffic = { calls: 0, bytesUp: 0 };

  /** The coordinator accepted a call of `agentId`: count its traffic from now on (idempotent). */
  admit(agentId: string): void {
    if (!this.byAgent.has(agentId)) this.byAgent.set(agentId, { bytesUp: 0, bytesDown: 0 });
  }

  /** A call the coordinator refused, with the bytes it sent. */
  refuse(bytesUp: number): void {
    this.refusedTotals.calls++;
    this.refusedTotals.bytesUp += bytesUp;
  }

  up(agentId: string, bytes: number): void {
    const traffic = this.byAgent.get(agentId);
    if (traffic) traffic.bytesUp += bytes;
    else this.refusedTotals.bytesUp += bytes;
  }

  down(agentId: string, bytes: number): void {
    const traffic = this.byAgent.get(agentId);
    if (traffic) traffic.bytesDown += bytes;
  }

  /** A copy: the caller may keep it while counting goes on. */
  snapshot(): Map<string, Traffic> {
    return new Map([...this.byAgent].map(([id, t]) => [id, { ...t }]));
  }

  refused(): RefusedTraffic {
    return { ...this.refusedTotals };
  }
}
