import type { Traffic } from './transport.js';

/** Per-agent byte counters behind Listener.traffic(). */
export class TrafficMeter {
  private readonly byAgent = new Map<string, Traffic>();

  private of(agentId: string): Traffic {
    let traffic = this.byAgent.get(agentId);
    if (!traffic) {
      traffic = { bytesUp: 0, bytesDown: 0 };
      this.byAgent.set(agentId, traffic);
    }
    return traffic;
  }

  up(agentId: string, bytes: number): void {
    this.of(agentId).bytesUp += bytes;
  }

  down(agentId: string, bytes: number): void {
    this.of(agentId).bytesDown += bytes;
  }

  /** A copy: the caller may keep it while counting goes on. */
  snapshot(): Map<string, Traffic> {
    return new Map([...this.byAgent].map(([id, t]) => [id, { ...t }]));
  }
}
