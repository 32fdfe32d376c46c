/**
 * The secure-aggregation options (docs/privacy.md, "Secure aggregation") as flags, shared by `mezo simulate` and
 * `mezo coordinator` so both spell them the same way. In a config file they are the `secureAggregation` object
 * (`enabled`, `threshold`, `neighbours`); the object's presence turns it on.
 */
import type { OptionSpecs } from './command-options.js';

/** The secure-aggregation flags, under the `secureAggregation` key. */
export const secureAggregationOptionSpecs = {
  secureAggregation: {
    key: 'secureAggregation.enabled',
    help: 'secure aggregation: the coordinator learns only each round\'s sum (needs --seed-mode shared and the mean; docs/privacy.md)',
  },
  secureAggregationThreshold: {
    key: 'secureAggregation.threshold',
    arg: '<θ>',
    help: 'secure aggregation: fraction of an agent\'s neighbours whose shares rebuild its secrets, in (0.5, 1] (default 2/3)',
  },
  secureAggregationNeighbours: {
    key: 'secureAggregation.neighbours',
    arg: '<k>',
    help: 'secure aggregation: neighbours per agent (SecAgg+ graph); 0, the default: every other agent of the round',
  },
} satisfies OptionSpecs;
