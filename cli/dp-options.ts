/**
 * The central and record-level DP options (docs/privacy.md) as flags and a summary line, shared by
 * `mezo simulate` and `mezo coordinator` so both spell them the same way.
 */
import type { OptionSpecs } from './command-options.js';

/** The central DP flags (cli/command-options.ts derives their MEZO_* variables), under the `dp` key. */
export const dpOptionSpecs = {
  dpClip: { key: 'dp.clip', arg: '<x>', help: 'central DP: clip each agent\'s values to this L2 norm (docs/privacy.md)' },
  dpNoiseMultiplier: { key: 'dp.noiseMultiplier', arg: '<x>', help: 'central DP: noise standard deviation in units of the clip' },
  dpEpsilon: { key: 'dp.epsilon', arg: '<x>', help: 'central DP: the ε budget (derives the noise multiplier when none is given; the run ends at it)' },
  dpDelta: { key: 'dp.delta', arg: '<x>', help: 'central DP: δ (default 1e-5)' },
} satisfies OptionSpecs;

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

/** The record-level DP flags (docs/privacy.md) of a job's agents, under the `recordDp` key. */
export const recordDpOptionSpecs = {
  dpRecordClip: {
    key: 'recordDp.clip',
    arg: '<x>',
    help: "record-level DP: clip each example's projected gradient (over a task's seeds, L2) to this (docs/privacy.md)",
  },
  dpRecordNoiseMultiplier: { key: 'recordDp.noiseMultiplier', arg: '<x>', help: 'record-level DP: noise standard deviation on each agent\'s sum, in units of the clip' },
  dpRecordEpsilon: {
    key: 'recordDp.epsilon',
    arg: '<x>',
    help: "record-level DP: the ε budget per agent's data (derives the noise multiplier when none is given; the job ends at it)",
  },
  dpRecordDelta: { key: 'recordDp.delta', arg: '<x>', help: 'record-level DP: δ (default 1e-5)' },
  dpPrivate: { key: 'recordDp.private', help: 'private mode (with record-level DP): agents release only the noised g, no losses' },
} satisfies OptionSpecs;
