import { describe, expect, it } from 'vitest';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';

/** Sample lines (not comments) of a metric in a scrape. */
const samples = (text: string, name: string): string[] => text.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));

describe('gauges that only a measurement can set', () => {
  it('leaves held-out accuracy, loss and sign agreement out of a scrape until they have a value', async () => {
    const metrics = new CoordinatorMetrics({ agentStatuses: () => [] });
    const before = await metrics.registry.metrics();
    // A 0 here would read as "0 % accuracy" to anyone (or any alert) looking at the scrape.
    for (const name of ['mezo_eval_accuracy_ratio', 'mezo_eval_loss', 'mezo_round_sign_agreement_ratio']) {
      expect(samples(before, name), name).toEqual([]);
      expect(before, name).not.toContain(`# TYPE ${name} `);
    }
    // A null (distinct seeds: no seed had two agents; an evaluation without accuracy) sets nothing either.
    metrics.observeSignAgreement(null);
    metrics.observeEvaluation({ accuracy: null, loss: 0.7 });
    const partial = await metrics.registry.metrics();
    expect(samples(partial, 'mezo_round_sign_agreement_ratio')).toEqual([]);
    expect(samples(partial, 'mezo_eval_accuracy_ratio')).toEqual([]);
    expect(samples(partial, 'mezo_eval_loss')).toEqual(['mezo_eval_loss 0.7']);

    metrics.observeEvaluation({ accuracy: 0.85, loss: 0.4 });
    metrics.observeSignAgreement(0.75);
    metrics.observeEvaluation({ accuracy: 0.875, loss: null });
    const after = await metrics.registry.metrics();
    expect(samples(after, 'mezo_eval_accuracy_ratio')).toEqual(['mezo_eval_accuracy_ratio 0.875']);
    expect(samples(after, 'mezo_eval_loss')).toEqual(['mezo_eval_loss 0.4']);
    expect(samples(after, 'mezo_round_sign_agreement_ratio')).toEqual(['mezo_round_sign_agreement_ratio 0.75']);
    expect(after).toContain('# TYPE mezo_eval_accuracy_ratio gauge');
  });
});
