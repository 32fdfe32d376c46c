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

/** Record-level DP flags (docs/privacy.md) → config path under `recordDp`. */
export const RECORD_DP_FLAGS: Record<string, string> = {
  dpRecordClip: 'recordDp.clip',
  dpRecordNoiseMultiplier: 'recordDp.noiseMultiplier',
  dpRecordEpsilon: 'recordDp.epsilon',
  dpRecordDelta: 'recordDp.delta',
  dpPrivate: 'recordDp.private',
};

export function recordDpEnv(prefix: 'MEZO_COORDINATOR'): Record<string, EnvBinding> {
  return {
    [`${prefix}_DP_RECORD_CLIP`]: { path: 'recordDp.clip', type: 'number' },
    [`${prefix}_DP_RECORD_NOISE_MULTIPLIER`]: { path: 'recordDp.noiseMultiplier', type: 'number' },
    [`${prefix}_DP_RECORD_EPSILON`]: { path: 'recordDp.epsilon', type: 'number' },
    [`${prefix}_DP_RECORD_DELTA`]: { path: 'recordDp.delta', type: 'number' },
    [`${prefix}_DP_PRIVATE`]: { path: 'recordDp.private', type: 'boolean' },
    [`${prefix}_DP_RECORD_SHARD_SIZE`]: { path: 'recordDp.shardSize', type: 'number' },
    [`${prefix}_DP_RECORD_FLEET_SIZE`]: { path: 'recordDp.fleetSize', type: 'number' },
  };
}

export function addRecordDpOptions(command: Command): Command {
  return command
    .option('--dp-record-clip <x>', "record-level DP: clip each example's projected gradient (over a task's seeds, L2) to this (docs/privacy.md)", number)
    .option('--dp-record-noise-multiplier <x>', 'record-level DP: noise standard deviation on each agent\'s sum, in units of the clip', number)
    .option('--dp-record-epsilon <x>', "record-level DP: the ε budget per agent's data (derives the noise multiplier when none is given; the job ends at it)", number)
    .option('--dp-record-delta <x>', 'record-level DP: δ (default 1e-5)', number)
    .option('--dp-private', 'private mode (with record-level DP): agents release only the noised g, no losses');
}
