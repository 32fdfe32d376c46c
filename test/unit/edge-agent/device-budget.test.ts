import { describe, expect, it } from 'vitest';
import { deviceBudget, registerAgentCommand, resolveAgentConfig } from '../../../cli/agent-command.js';
import { runPlan } from '../../../cli/plan-command.js';
import { createAgentBackend } from '../../../edge-agent/agent-backend.js';
import { DeviceBudget, DeviceBudgetError, predictMezoPeak } from '../../../edge-agent/device-budget.js';
import { defaultModelDir, loadDefaultModel } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { runCli } from '../../helpers/run-cli.js';

describe('an agent within its device budget', () => {
  it('predicts the MeZO peak that mezo plan prints for the same model and batch', async () => {
    const prepared = await loadDefaultModel();
    for (const batch of [1, 64, 512]) {
      const plan = await runPlan(defaultModelDir(), { batch });
      const mezo = (plan.estimates as Array<{ method: string; total: number }>).find((e) => e.method === 'mezo')!;
      expect(predictMezoPeak(prepared, batch)).toBe(mezo.total);
    }
    // A larger batch holds more activations.
    expect(predictMezoPeak(prepared, 512)).toBeGreaterThan(predictMezoPeak(prepared, 64));
  });

  it('declines to join, with the reason, when the budget is below the prediction; joins at or above it', async () => {
    const prepared = await loadDefaultModel();
    const peak = predictMezoPeak(prepared, 64);
    const below = resolveAgentConfig({ agentId: 'a1', memoryBudget: String(peak - 1) }, {});
    const error = await deviceBudget(below, prepared).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DeviceBudgetError);
    expect((error as Error).message).toMatch(/^declining to join: MeZO at batch 64 needs [0-9.]+ MiB \(predicted peak\), above the memory budget of [0-9.]+ MiB$/);
    expect(DeviceBudgetError.EXIT_CODE).toBe(3);
    const exact = await deviceBudget(resolveAgentConfig({ agentId: 'a1', memoryBudget: String(peak) }, {}), prepared);
    expect(exact?.memoryBudgetBytes).toBe(peak);
    // The batch it plans for is --plan-batch: a budget that fits batch 64 need not fit batch 4096.
    const big = resolveAgentConfig({ agentId: 'a1', memoryBudget: String(peak), planBatch: 4096 }, {});
    await expect(deviceBudget(big, prepared)).rejects.toThrow(/MeZO at batch 4096 needs/);
    // No budget, no load threshold: nothing to check.
    expect(await deviceBudget(resolveAgentConfig({ agentId: 'a1' }, {}), prepared)).toBeUndefined();
  });

  it('declines tasks whose batch does not fit, and every task while the load is above the threshold', async () => {
    const prepared = await loadDefaultModel();
    let load = 0.2;
    const device = new DeviceBudget(prepared, { memoryBudgetBytes: predictMezoPeak(prepared, 64), pauseAboveLoad: 1, readLoad: () => load });
    expect(device.busy()).toBe(false);
    expect(device.declineReason(64)).toBeUndefined();
    expect(device.declineReason(4096)).toBe('memory');
    load = 1.5;
    expect(device.busy()).toBe(true);
    expect(device.declineReason(64)).toBe('busy');
    load = 1; // at the threshold is not above it
    expect(device.declineReason(64)).toBeUndefined();
    // Without a threshold the device is never busy, whatever the load.
    expect(new DeviceBudget(prepared, { readLoad: () => 100 }).busy()).toBe(false);
  });

  it('mezo agent with a budget below the prediction prints one line and exits 3 without contacting anyone', async () => {
    // Port 9 (discard) on loopback: nothing is dialled, because the check comes before the connection.
    const run = await runCli([registerAgentCommand], 'agent', '--agent-id', 'small', '--coordinator', '127.0.0.1:9', '--memory-budget', '1MiB', '--plan-batch', '8');
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^agent small: declining to join: MeZO at batch 8 needs [0-9.]+ MiB \(predicted peak\), above the memory budget of 1\.0 MiB\n$/);
  });

  it('--max-threads reaches the noise engine of an in-process backend (the native addon; TypeScript runs on one thread)', async () => {
    const prepared = await loadDefaultModel();
    const before = noise.threads;
    const backend = await createAgentBackend(prepared, 'gaussian', { worker: false, engine: noise, intraOpThreads: 1, noiseThreads: 3 });
    try {
      expect(noise.threads).toBe(noise.kind === 'native' ? 3 : 1);
    } finally {
      await backend.close();
      noise.setThreads(before);
    }
  });
});
