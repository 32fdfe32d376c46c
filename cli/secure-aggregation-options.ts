/**
 * The secure-aggregation options (docs/privacy.md, "Secure aggregation") as flags, shared by `mezo simulate` and
 * `mezo coordinator` so both spell them the same way. In a config file they are the `secureAggregation` object
 * (`enabled`, `threshold`, `neighbours`); the object's presence turns it on.
 */
import type { Command } from 'commander';
import { number } from './option-parsing.js';

/** Flag name → config path under `secureAggregation`. */
export const SECURE_AGGREGATION_FLAGS: Record<string, string> = {
  secureAggregation: 'secureAggregation.enabled',
  secureAggregationThreshold: 'secureAggregation.threshold',
  secureAggregationNeighbours: 'secureAggregation.neighbours',
};

export function addSecureAggregationOptions(command: Command): Command {
  return command
    .option('--secure-aggregation', 'secure aggregation: the coordinator learns only each round\'s sum (needs --seed-mode shared and the mean; docs/privacy.md)')
    .option('--secure-aggregation-threshold <θ>', 'secure aggregation: fraction of an agent\'s neighbours whose shares rebuild its secrets, in (0.5, 1] (default 2/3)', number)
    .option('--secure-aggregation-neighbours <k>', 'secure aggregation: neighbours per agent (SecAgg+ graph); 0, the default: every other agent of the round', number);
}
