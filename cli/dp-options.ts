/**
 * The central DP options (docs/privacy.md) as flags, environment variables and a summary line, shared by
 * `mezo simulate` and `mezo coordinator` so both spell them the same way.
 */
import type { Command } from 'commander';
import type { EnvBinding } from '../shared/config/index.js';
import { number } from './option-parsing.js';

/** Flag name → config path under `dp`. */
export const DP_FLAGS: Record<string, string> = {
  dpClip: 'dp.clip',
  dpNoiseMultiplier: 'dp.noiseMultiplier',
  dpEpsilon: 'dp.epsilon',
  dpDelta: 'dp.delta',
};

export function dpEnv(prefix: 'MEZO_COORDINATOR'): Record<string, EnvBinding> {
  return {
    [`${prefix}_DP_CLIP`]: { path: 'dp.clip', type: 'number' },
    [`${prefix}_DP_NOISE_MULTIPLIER`]: { path: 'dp.noiseMultiplier', type: 'number' },
    [`${prefix}_DP_EPSILON`]: { path: 'dp.epsilon', type: 'number' },
    [`${prefix}_DP_DELTA`]: { path: 'dp.delta', type: 'number' },
    [`${prefix}_DP_FLEET_SIZE`]: { path: 'dp.fleetSize', type: 'number' },
  };
}

export function addDpOptions(command: Command): Command {
  return command
    .option('--dp-clip <x>', 'central DP: clip each agent\'s values to this L2 norm (docs/privacy.md)', number)
    .option('--dp-noise-multiplier <x>', 'central DP: noise standard deviation in units of the clip', number)
    .option('--dp-epsilon <x>', 'central DP: the ε budget (derives the noise multiplier when none is given; the run ends at it)', number)
    .option('--dp-delta <x>', 'central DP: δ (default 1e-5)', number);
}

/** What central DP spent: the noise multiplier, ε at δ, the rounds released, whether the budget holds no further round. */
export interface PrivacySpent {
  noiseMultiplier: number;
  epsilon: number;
  delta: number;
  roundsReleased: number;
  budgetSpent: boolean;
}

/** The summary's privacy line. */
export function formatPrivacy(p: PrivacySpent, clip: number): string {
  return (
    `central DP: ε = ${p.epsilon.toFixed(3)} at δ = ${p.delta.toExponential()} after ${p.roundsReleased} rounds, noise multiplier ${p.noiseMultiplier.toFixed(3)}, clip ${clip}` +
    (p.budgetSpent ? ' (budget spent)' : '')
  );
}
