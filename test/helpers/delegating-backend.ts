import type { MezoBackend } from '../../edge-agent/mezo-backend.js';

/** A backend that forwards everything to `inner` except the methods given in `overrides` (fault injection). */
export function delegatingBackend(inner: MezoBackend, overrides: Partial<MezoBackend>): MezoBackend {
  return {
    manifest: inner.manifest,
    distribution: inner.distribution,
    restore: inner.restore,
    evaluate: (...args) => inner.evaluate(...args),
    apply: (terms, decay) => inner.apply(terms, decay),
    run: (batch) => inner.run(batch),
    snapshot: () => inner.snapshot(),
    sha256: () => inner.sha256(),
    load: (slab) => inner.load(slab),
    close: () => inner.close(),
    ...overrides,
  };
}

/** Calls `onEvaluate` whenever the agent starts a task: the round is open at that moment. */
export function observedBackend(onEvaluate: () => void): (inner: MezoBackend) => MezoBackend {
  return (inner) =>
    delegatingBackend(inner, {
      evaluate: (...args) => {
        onEvaluate();
        return inner.evaluate(...args);
      },
    });
}
