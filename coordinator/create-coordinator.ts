/**
 * The coordinator as a library call: `createCoordinator(options)` builds a Coordinator (coordinator.ts) from typed
 * options and hands back a handle to start, stop and await it. Unlike `mezo coordinator` it installs no signal
 * handlers, writes nothing to stdout or stderr of its own (the structured logger, MEZO_LOG_LEVEL, is the only
 * output), and leaves the process alone; the embedding program owns its lifecycle (docs/embedding.md).
 */
import { paddingRanges } from '../shared/model/slab-layout.js';
import { noiseModeFor } from '../shared/optim/perturbation.js';
import type { ServiceHealth } from '../shared/transport/health.js';
import { Coordinator, type CoordinatorInit, type RunReport } from './coordinator.js';
import { CoordinatorMetrics } from './metrics.js';

/** What createCoordinator reads of a prepared model (shared/model: loadPrepared, loadDefaultModel). */
export interface CoordinatorModel {
  slab: Float32Array;
  manifest: { tensors: ReadonlyArray<{ offset: number; length: number; shape: readonly number[] }> };
}

export interface CreateCoordinatorOptions extends Omit<CoordinatorInit, 'baseSlab'> {
  /** The base weights; or give `model` instead. */
  baseSlab?: Float32Array;
  /**
   * A prepared model, in place of baseSlab, padding and lowRank: its slab is the base, its layout gives the
   * padding agents keep at zero and, for a log whose header says 'lowrank', the layout at the header's rank.
   */
  model?: CoordinatorModel;
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
  /** Listens without starting the rounds (agents may join, e.g. until a fleet is complete); resolves with the address. */
  listen(): Promise<string>;
  /** Runs the rounds (listening first if need be) and resolves with the run's report, like start() then waitForEnd(). */
  run(): Promise<RunReport>;
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
  if (options.model !== undefined) {
    if (options.baseSlab !== undefined) throw new TypeError('createCoordinator: give options.model or options.baseSlab, not both');
    const model = options.model as unknown as Record<string, unknown>;
    if (!isObject(model)) throw new TypeError('createCoordinator: options.model must be a prepared model (slab and manifest)');
    if (!(model.slab instanceof Float32Array)) throw new TypeError('createCoordinator: options.model.slab must be a Float32Array (the base weights)');
    if (!isObject(model.manifest) || !Array.isArray((model.manifest as { tensors?: unknown }).tensors)) {
      throw new TypeError('createCoordinator: options.model.manifest.tensors must be the model\'s tensor layout');
    }
  } else required(fields, 'baseSlab', (v) => v instanceof Float32Array, 'a Float32Array (the base weights)');
  required(fields, 'engine', isObject, 'a NoiseEngine');
  required(fields, 'transport', (v) => isObject(v) && typeof (v as { listen?: unknown }).listen === 'function', 'a Transport');
  required(fields, 'options', isObject, 'the round options (RoundOptionsInput)');
  if (options.metrics !== undefined && typeof options.metrics !== 'boolean') throw new TypeError('createCoordinator: options.metrics must be a boolean');
  const { metrics: withMetrics = true, model, baseSlab, ...rest } = options;
  const init: CoordinatorInit = model
    ? {
        ...rest,
        baseSlab: model.slab,
        padding: rest.padding ?? paddingRanges(model.manifest.tensors, model.slab.length),
        // The log's header says how its entries replay: a 'lowrank' log needs the model's layout at its rank.
        ...(rest.lowRank || rest.log.header.distribution !== 'lowrank'
          ? {}
          : { lowRank: noiseModeFor({ distribution: 'lowrank', rank: rest.log.header.rank }, model.manifest.tensors).lowRank }),
      }
    : { ...rest, baseSlab: baseSlab! };
  const coordinator = new Coordinator(init);
  const metrics = withMetrics ? new CoordinatorMetrics(coordinator) : undefined;
  if (metrics) {
    metrics.setLogVersion(init.log.version);
    coordinator.onRound((report) => metrics.observeRound(report));
  }
  let running: Promise<RunReport> | undefined;
  let listening: Promise<string> | undefined;
  let started: Promise<string> | undefined;
  const listen = (): Promise<string> => (listening ??= coordinator.listen());
  const run = (): Promise<RunReport> => {
    running ??= listen().then(() => coordinator.run());
    return running;
  };
  return {
    coordinator,
    health: coordinator.health,
    metrics,
    get address() {
      return coordinator.address;
    },
    start() {
      started ??= listen().then((address) => {
        // Observed through waitForEnd(); a loop failure must not surface as an unhandled rejection meanwhile.
        run().catch(() => undefined);
        return address;
      });
      return started;
    },
    listen,
    run,
    stop(stopOptions = {}) {
      coordinator.stop(stopOptions);
    },
    async waitForEnd() {
      if (!started && !running) throw new Error('createCoordinator: waitForEnd() before start() or run()');
      await started;
      return running!;
    },
    close(graceMs) {
      return coordinator.close(graceMs);
    },
  };
}
