import { describe, expect, it } from 'vitest';
import { describeExit, resolveAgentConfig } from '../../../cli/agent-command.js';

describe('mezo agent at the end of a job: options and the exit line', () => {
  it('leaves by default; --keep-waiting and --give-up-after-ms come from flags or MEZO_AGENT_* env', () => {
    const defaults = resolveAgentConfig({ agentId: 'a1' }, {});
    expect(defaults.keepWaiting).toBe(false);
    expect(defaults.giveUpAfterMs).toBeUndefined();
    const env = { MEZO_AGENT_KEEP_WAITING: 'true', MEZO_AGENT_GIVE_UP_AFTER_MS: '60000' };
    expect(resolveAgentConfig({ agentId: 'a1' }, env)).toMatchObject({ keepWaiting: true, giveUpAfterMs: 60_000 });
    expect(resolveAgentConfig({ agentId: 'a1', giveUpAfterMs: 5000 }, env)).toMatchObject({ keepWaiting: true, giveUpAfterMs: 5000 });
    expect(() => resolveAgentConfig({ agentId: 'a1', giveUpAfterMs: 0 }, {})).toThrow(/giveUpAfterMs.*--give-up-after-ms/);
    expect(() => resolveAgentConfig({ agentId: 'a1' }, { MEZO_AGENT_GIVE_UP_AFTER_MS: 'soon' })).toThrow(/MEZO_AGENT_GIVE_UP_AFTER_MS must be a number/);
  });

  it('says in one line why the agent exits', () => {
    const jobEnd = { jobId: 'demo', version: 200, headHash: 'fe572248087a'.padEnd(64, '0') };
    expect(describeExit('a0', { reason: 'job-ended', jobEnd: { ...jobEnd, reason: 'completed' } })).toBe('agent a0: job demo completed at version 200 (head fe572248087a); exiting');
    expect(describeExit('a0', { reason: 'job-ended', jobEnd: { ...jobEnd, reason: 'stopped' } })).toBe('agent a0: job demo was stopped by its coordinator at version 200 (head fe572248087a); exiting');
    expect(describeExit('a0', { reason: 'stopped' })).toBe('agent a0: stopped');
  });
});
