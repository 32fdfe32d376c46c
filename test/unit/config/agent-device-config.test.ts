import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { resolveAgentConfig, threadOptions } from '../../../cli/agent-command.js';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';
import { size } from '../../../cli/option-parsing.js';

describe('mezo agent device options: --memory-budget, --max-threads, --pause-above-load', () => {
  it('parses sizes as mezo plan --budget does, from flags, MEZO_AGENT_* env or a number in config', () => {
    const none = resolveAgentConfig({ agentId: 'a1' }, {});
    expect([none.memoryBudget, none.maxThreads, none.pauseAboveLoad, none.planBatch]).toEqual([undefined, undefined, undefined, 64]);
    expect(resolveAgentConfig({ agentId: 'a1', memoryBudget: '512MiB' }, {}).memoryBudget).toBe(512 * 2 ** 20);
    expect(resolveAgentConfig({ agentId: 'a1', memoryBudget: '1.5 GiB' }, {}).memoryBudget).toBe(1.5 * 2 ** 30);
    expect(resolveAgentConfig({ agentId: 'a1', memoryBudget: '800MB' }, {}).memoryBudget).toBe(800e6);
    const env = { MEZO_AGENT_MEMORY_BUDGET: '256MiB', MEZO_AGENT_MAX_THREADS: '2', MEZO_AGENT_PAUSE_ABOVE_LOAD: '0.75', MEZO_AGENT_PLAN_BATCH: '16' };
    expect(resolveAgentConfig({ agentId: 'a1' }, env)).toMatchObject({ memoryBudget: 256 * 2 ** 20, maxThreads: 2, pauseAboveLoad: 0.75, planBatch: 16 });
    // Flags beat the environment.
    expect(resolveAgentConfig({ agentId: 'a1', memoryBudget: '1GiB', maxThreads: 4 }, env)).toMatchObject({ memoryBudget: 2 ** 30, maxThreads: 4 });
  });

  it('names the option and the problem when a value is wrong', () => {
    expect(() => resolveAgentConfig({ agentId: 'a1', memoryBudget: 'lots' }, {})).toThrow(/memoryBudget: "lots" is not a size; write e\.g\. 512MiB.*--memory-budget/);
    expect(() => resolveAgentConfig({ agentId: 'a1', memoryBudget: '0MiB' }, {})).toThrow(/memoryBudget: "0MiB" must be a positive size.*--memory-budget/);
    expect(() => resolveAgentConfig({ agentId: 'a1' }, { MEZO_AGENT_MEMORY_BUDGET: '12 parsecs' })).toThrow(/memoryBudget: "12 parsecs" is not a size.*MEZO_AGENT_MEMORY_BUDGET/);
    expect(() => resolveAgentConfig({ agentId: 'a1', maxThreads: 0 }, {})).toThrow(/maxThreads: .*--max-threads/);
    expect(() => resolveAgentConfig({ agentId: 'a1', maxThreads: 1.5 }, {})).toThrow(/maxThreads: .*--max-threads/);
    expect(() => resolveAgentConfig({ agentId: 'a1', pauseAboveLoad: 0 }, {})).toThrow(/pauseAboveLoad: .*--pause-above-load/);
    expect(() => resolveAgentConfig({ agentId: 'a1', pauseAboveLoad: -1 }, {})).toThrow(/pauseAboveLoad: .*--pause-above-load/);
    expect(() => resolveAgentConfig({ agentId: 'a1' }, { MEZO_AGENT_PAUSE_ABOVE_LOAD: 'high' })).toThrow(/MEZO_AGENT_PAUSE_ABOVE_LOAD must be a number/);
    expect(() => resolveAgentConfig({ agentId: 'a1', planBatch: 0 }, {})).toThrow(/planBatch: .*--plan-batch/);
  });

  it('--max-threads caps onnxruntime\'s intra-op threads and sets the noise addon\'s', () => {
    expect(threadOptions(resolveAgentConfig({ agentId: 'a1', threads: 4 }, {}))).toEqual({ intraOpThreads: 4 });
    expect(threadOptions(resolveAgentConfig({ agentId: 'a1', threads: 4, maxThreads: 2 }, {}))).toEqual({ intraOpThreads: 2, noiseThreads: 2 });
    expect(threadOptions(resolveAgentConfig({ agentId: 'a1', threads: 1, maxThreads: 3 }, {}))).toEqual({ intraOpThreads: 1, noiseThreads: 3 });
  });

  it('mezo coordinator --min-memory takes a size and sets what capability sampling asks of an agent', () => {
    expect(size('600MiB')).toBe(600 * 2 ** 20);
    expect(() => size('much')).toThrow(InvalidArgumentError);
    expect(() => size('much')).toThrow(/"much" is not a size/);
    const config = resolveCoordinatorConfig({ sampling: 'capability', minMemory: size('600MiB') }, {});
    expect(config.job.strategy).toMatchObject({ sampling: 'capability', minMemoryBytes: 600 * 2 ** 20 });
    expect(() => resolveCoordinatorConfig({ minMemory: -1 }, {})).toThrow(/minMemoryBytes.*--min-memory/);
  });
});
