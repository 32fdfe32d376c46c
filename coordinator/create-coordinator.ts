/**
 * The coordinator as a library call: `createCoordinator(options)` builds a Coordinator (coordinator.ts) from typed
 * options and hands back a handle to start, stop and await it. Unlike `mezo coordinator` it installs no signal
 * handlers, writes nothing to stdout or stderr of its own (the structured logger, MEZO_LOG_LEVEL, is the only
 * output), and leaves the process alone; the embedding program owns its lifecycle (docs/embedding.md).
 */
import type { ServiceHealth } from '../shared/transport/health.js';
import { Coordinator, type CoordinatorInit, type RunReport } from './coordinator.js';
import { CoordinatorMetrics } from './metrics.js';

export interface CreateCoordinatorOptions extends CoordinatorInit {
  /**
   * Collect Prometheus metrics for this coordinator (CoordinatorMetrics: rounds, losses, lags, traffic, process);
   * default true. `handle.metrics.registry.metrics()` renders them; serving them over HTTP is the caller's.
   */
  metrics?: boolean;
}

export interface CoordinatorHandle {
  /** The Coordinator itself, for what the handle does not wrap (agent statuses, weights, onRound). */
  readonly coordinator: Coordinator;
  /** The one health every transport's health check answers (health.ts); feed it to a /readyz of your own. */
  readonly health: ServiceHealth;
  /** Where agents reach it, once start() resolved. */
  readonly address: string | undefined;
  /** The coordinator's Prometheus metrics, unless options.metrics is false. */
  readonly metrics: CoordinatorMetrics | undefined;
  /** Listens (restoring from a snapshot when configured), then runs the rounds in the background; resolves with the address. */
  start(): Promise<string>;
  /** Stops scheduling (Coordinator.stop); with endJob the agents are told the job ended. waitForEnd() then resolves. */
  stop(options?: { endJob?: boolean }): void;
  /** The run's report once the last round is logged or stop() took effect; rejects if the round loop failed. */
  waitForEnd(): Promise<RunReport>;
  /** stop(), wait for the loop, close the streams, the listener and the log. */
  close(graceMs?: number): Promise<void>;
}

function required(options: Record<string, unknown>, field: string, check: (value: unknown) => boolean, what: string): void {
  if (!check(options[field])) throw new TypeError(`createCoordinator: options.${field} must be ${what}`);
}

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null;

export function createCoordinator(options: CreateCoordinatorOptions): CoordinatorHandle {
  if (!isObject(options)) throw new TypeError('createCoordinator: options must be an object');
  const fields = options as unknown as Record<string, unknown>;
  required(fields, 'log', isObject, 'an UpdateLog');
  required(fields, 'baseSlab', (v) => v instanceof Float32Array, 'a Float32Array (the base weights)');
  required(fields, 'engine', isObject, 'a NoiseEngine');
  required(fields, 'transport', (v) => isObject(v) && typeof (v as { listen?: unknown }).listen === 'function', 'a Transport');
  required(fields, 'options', isObject, 'the round options (RoundOptionsInput)');
  if (options.metrics !== undefined && typeof options.metrics !== 'boolean') throw new TypeError('createCoordinator: options.metrics must be a boolean');
  const { metrics: withMetrics = true, ...init } = options;
  const coordinator = new Coordinator(init);
  const metrics = withMetrics ? new CoordinatorMetrics(coordinator) : undefined;
  if (metrics) {
    metrics.setLogVersion(init.log.version);
    coordinator.onRound((report) => metrics.observeRound(report));
  }
  let running: Promise<RunReport> | undefined;
  let started: Promise<string> | undefined;
  return {
    coordinator,
    health: coordinator.health,
    metrics,
    get address() {
      return coordinator.address;
    },
    start() {
      started ??= coordinator.listen().then((address) => {
        running = coordinator.run();
        // Observed through waitForEnd(); a loop failure must not surface as an unhandled rejection meanwhile.
        running.catch(() => undefined);
        return address;
      });
      return started;
    },
    stop(stopOptions = {}) {
      coordinator.stop(stopOptions);
    },
    async waitForEnd() {
      if (!started) throw new Error('createCoordinator: waitForEnd() before start()');
      await started;
      return running!;
    },
    close(graceMs) {
      return coordinator.close(graceMs);
    },
  };
}
