/**
 * The coordinator's health, one value every way of asking reads: the gRPC health service (grpc.health.v1 Check
 * and Watch), the NATS health subject, the in-memory transport, and the operator HTTP server's /readyz. The
 * coordinator drives it through its lifecycle (NOT_SERVING until its listener is up, SERVING while it serves,
 * NOT_SERVING again from the moment it starts closing), so no transport keeps a status of its own that could
 * disagree with the others.
 */
import type { HealthStatus } from './transport.js';

export type { HealthStatus };

const STATUSES: ReadonlySet<string> = new Set(['SERVING', 'NOT_SERVING']);

export class ServiceHealth {
  private current: HealthStatus;
  private readonly watchers = new Set<(status: HealthStatus) => void>();

  constructor(initial: HealthStatus = 'NOT_SERVING') {
    this.current = ServiceHealth.check(initial, 'initial');
  }

  private static check(status: HealthStatus, what: string): HealthStatus {
    if (!STATUSES.has(status)) throw new RangeError(`health ${what}: must be SERVING or NOT_SERVING, got ${JSON.stringify(status)}`);
    return status;
  }

  get status(): HealthStatus {
    return this.current;
  }

  get serving(): boolean {
    return this.current === 'SERVING';
  }

  /** Sets the status; watchers hear it only when it changed. */
  set(status: HealthStatus): void {
    ServiceHealth.check(status, 'status');
    if (status === this.current) return;
    this.current = status;
    for (const watcher of [...this.watchers]) {
      try {
        watcher(status);
      } catch {
        // One failing reader (a closed health stream) must not keep the others from hearing the change.
      }
    }
  }

  /** Calls `watcher` on every change (not with the current value); returns its unsubscribe. */
  watch(watcher: (status: HealthStatus) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }
}
