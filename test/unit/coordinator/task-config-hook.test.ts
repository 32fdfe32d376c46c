/** Strategy.configureTask through a wrapper: CentralDpStrategy hands on its inner strategy's config, or none. */
import { describe, expect, it } from 'vitest';
import { CentralDpStrategy, MezoStrategy, type RoundContext, type TaskConfig } from '../../../coordinator/index.js';

class Configuring extends MezoStrategy {
  configureTask(context: RoundContext, agentId: string): TaskConfig {
    return { round: context.round, attempt: context.attempt, agent: agentId };
  }
}

describe('CentralDpStrategy.configureTask', () => {
  const context = { round: 4, attempt: 1, version: 4 };
  const config = { agentsPerRound: 2 };

  it("passes on the inner strategy's config for each agent", () => {
    const dp = new CentralDpStrategy(new Configuring(config), { clip: 1, noiseMultiplier: 1 });
    expect(dp.configureTask(context, 'a')).toEqual({ round: 4, attempt: 1, agent: 'a' });
    expect(dp.configureTask({ ...context, attempt: 2 }, 'b')).toEqual({ round: 4, attempt: 2, agent: 'b' });
  });

  it('gives none when the inner strategy has no hook', () => {
    const dp = new CentralDpStrategy(new MezoStrategy(config), { clip: 1, noiseMultiplier: 1 });
    expect(dp.configureTask(context, 'a')).toBeUndefined();
  });
});
