/**
 * What an agent may ask of its device: a memory budget that a task's predicted MeZO peak (the `mezo plan`
 * memory model) must fit, and a load threshold above which the device counts as busy and the agent declines
 * tasks until the load falls. The agent checks the budget once before joining (at the batch size it plans for)
 * and again for each task's batch size; the load is read when a task arrives and for every heartbeat.
 */
import { availableParallelism, loadavg } from 'node:os';
import type { PreparedModel } from '../shared/model/index.js';
import { analyzeGraph, estimateMemory, formatBytes, planGraphFromPrepared } from '../shared/plan/index.js';
import type { DeclineReason } from '../shared/transport/index.js';

/** The agent's model does not fit its memory budget: it does not join. `mezo agent` exits with EXIT_CODE. */
export class DeviceBudgetError extends Error {
  override name = 'DeviceBudgetError';
  /**
   * `mezo agent`'s exit code when it declines to join: not 1 (a failure worth a restart) nor 2 (a usage or
   * configuration error), so a service manager can tell "this device is too small for the job" apart.
   */
  static readonly EXIT_CODE = 3;
}

/** The one-minute load average per core: what --pause-above-load compares with. */
export function loadPerCore(): number {
  return loadavg()[0]! / availableParallelism();
}

/** Predicted peak memory (bytes) of MeZO on the prepared model at `batch`: the number `mezo plan` prints. */
export function predictMezoPeak(prepared: Pick<PreparedModel, 'model' | 'manifest'>, batch: number): number {
  const facts = analyzeGraph(planGraphFromPrepared(prepared), { batch });
  return estimateMemory(facts, 'mezo').total;
}

export interface DeviceBudgetOptions {
  /** Bytes the agent may use; unset: no memory check. */
  memoryBudgetBytes?: number;
  /** Predicted peak bytes at a batch size (default: predictMezoPeak on the model). */
  predictPeak?: (batch: number) => number;
  /** Load per core above which the device is busy; unset: never busy. */
  pauseAboveLoad?: number;
  /** Reads the load per core (default: loadPerCore); injected by tests and simulations. */
  readLoad?: () => number;
}

export class DeviceBudget {
  readonly memoryBudgetBytes: number | undefined;
  readonly pauseAboveLoad: number | undefined;
  private readonly predictPeak: (batch: number) => number;
  private readonly readLoad: () => number;
  private readonly peaks = new Map<number, number>();

  constructor(prepared: Pick<PreparedModel, 'model' | 'manifest'> | undefined, options: DeviceBudgetOptions) {
    this.memoryBudgetBytes = options.memoryBudgetBytes;
    this.pauseAboveLoad = options.pauseAboveLoad;
    this.readLoad = options.readLoad ?? loadPerCore;
    const predict = options.predictPeak ?? (prepared ? (batch: number) => predictMezoPeak(prepared, batch) : undefined);
    if (predict === undefined && options.memoryBudgetBytes !== undefined) throw new TypeError('a memory budget needs the prepared model or options.predictPeak');
    this.predictPeak = predict ?? (() => 0);
  }

  /** Predicted MeZO peak at `batch` (computed once per batch size: a task's batch rarely changes). */
  peakAt(batch: number): number {
    let peak = this.peaks.get(batch);
    if (peak === undefined) {
      peak = this.predictPeak(batch);
      this.peaks.set(batch, peak);
    }
    return peak;
  }

  /** Why a batch of this size does not fit the budget, or undefined when it does (or no budget is set). */
  misfit(batch: number): string | undefined {
    const budget = this.memoryBudgetBytes;
    if (budget === undefined) return undefined;
    const peak = this.peakAt(batch);
    if (peak <= budget) return undefined;
    return `MeZO at batch ${batch} needs ${formatBytes(peak)} (predicted peak), above the memory budget of ${formatBytes(budget)}`;
  }

  /** Throws DeviceBudgetError with the one-line reason when the batch does not fit. */
  checkFits(batch: number): void {
    const reason = this.misfit(batch);
    if (reason !== undefined) throw new DeviceBudgetError(`declining to join: ${reason}`);
  }

  /** The device's load per core is above the threshold. */
  busy(): boolean {
    return this.pauseAboveLoad !== undefined && this.readLoad() > this.pauseAboveLoad;
  }

  /** Why the agent declines a task of this batch size now (busy first: it says nothing about the task). */
  declineReason(batch: number): DeclineReason | undefined {
    if (this.busy()) return 'busy';
    if (this.misfit(batch) !== undefined) return 'memory';
    return undefined;
  }
}
