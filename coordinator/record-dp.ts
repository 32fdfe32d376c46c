/**
 * The coordinator's side of record-level DP (shared/privacy/record-dp.ts): the agents clip and noise, and the
 * coordinator accounts ε per agent's data after every committed round, at that round's agent sampling rate
 * (agents asked over agents connected), and ends the job cleanly when one more round would exceed the budget.
 * An attempt that failed (no quorum) still had agents release noised values to the coordinator, so each
 * committed round counts once per attempt it took.
 */
import type { RecordDpAccountant } from '../shared/privacy/record-dp.js';
import type { Coordinator, RoundReport } from './coordinator.js';

/** Accounts each committed round; with a budget, stops the job (agents hear 'stopped') before it is exceeded. Returns the unsubscribe. */
export function trackRecordPrivacy(coordinator: Pick<Coordinator, 'onRound' | 'stop' | 'options'>, accountant: RecordDpAccountant): () => void {
  return coordinator.onRound((report: RoundReport) => {
    const rate = report.connected > 0 ? Math.min(1, report.asked / report.connected) : 1;
    for (let attempt = 0; attempt <= report.attempt; attempt++) accountant.step(rate);
    // After the job's last round there is nothing to stop: the job completes.
    if (report.round + 1 < coordinator.options.rounds && accountant.nextRoundExceedsBudget()) coordinator.stop({ endJob: true });
  });
}
