import { describe, expect, it } from 'vitest';
import { UpdateLog, replayStep, replaySteps, type LogHeaderInput } from '../../../shared/log/index.js';

const header: LogHeaderInput = { jobId: 'replay-steps', baseSha256: 'ab'.repeat(32), distribution: 'gaussian', decayRanges: [[0, 4]] };

describe('replaySteps', () => {
  it('starts at the last rebase record, from the base, and carries each update decay other than 1 (a log with decay never compacts after it)', async () => {
    const log = UpdateLog.inMemory(header);
    await log.append({ round: 0, lr: 1e-3, terms: [{ seed: 1n, coeff: 1e-3 }] });
    await log.appendRebase({ round: 0 });
    await log.append({ round: 1, lr: 1e-3, terms: [{ seed: 2n, coeff: 2e-3 }] });
    await log.appendRebase({ round: 1 });
    await log.append({ round: 2, lr: 1e-3, terms: [{ seed: 3n, coeff: 3e-3 }] });
    await log.append({ round: 3, lr: 1e-3, terms: [{ seed: 4n, coeff: 4e-3 }], decay: Math.fround(0.25) });

    const steps = replaySteps(log.entries());
    expect(steps.map((s) => [s.entry.version, s.fromBase, s.decay])).toEqual([
      [4, true, undefined],
      [5, false, undefined],
      [6, false, 0.25],
    ]);
    expect(replaySteps(log.entries(0, 3)).map((s) => [s.entry.version, s.fromBase, s.decay])).toEqual([
      [2, true, undefined],
      [3, false, undefined],
    ]);
    // Before any rebase, every entry applies onto the weights as they stand.
    expect(replaySteps(log.entries(0, 1)).map((s) => [s.entry.version, s.fromBase, s.decay])).toEqual([[1, false, undefined]]);
    expect(replayStep(log.entries()[0]!)).toMatchObject({ fromBase: false, decay: undefined });
    expect(replaySteps([])).toEqual([]);
  });
});
