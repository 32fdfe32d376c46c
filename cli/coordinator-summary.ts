/**
 * The human summary `mezo coordinator` prints on a terminal when the job ends (a pipe gets the JSON report):
 * the same facts as the run record's summary, with the wall time named as the run record's, and where the log,
 * the run record and the dashboard are.
 */
import type { RunReport } from '../coordinator/coordinator.js';
import type { RunRecord } from '../coordinator/run-record.js';
import { formatPrivacy } from './dp-options.js';
import { formatRecordPrivacy, type RecordPrivacySpent } from '../shared/privacy/record-dp.js';

export interface CoordinatorOutcome {
  report: RunReport & { recordPrivacy?: RecordPrivacySpent };
  /** The run record as the run ended (written to `files.runRecord` when one was asked for). */
  record: RunRecord;
  files: { log: string; runRecord?: string; dashboard?: string };
  /** What the held-out evaluation used, or why there was none. */
  heldOut: { dataset: string; examples: number; every: number } | { off: string };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

function bytes(n: number): string {
  if (n < 1024) return `${n.toFixed(0)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

const num = (x: number | null): string => (x === null ? '–' : x.toFixed(4));

export function formatCoordinatorSummary(outcome: CoordinatorOutcome): string {
  const { report, record, files, heldOut } = outcome;
  const s = record.summary;
  const rows = record.rounds;
  // Rounds per second over the rounds themselves: the wall time also holds the wait for agents to join.
  const first = rows[0];
  const last = rows.at(-1);
  const training = first && last ? last.at - (first.at - first.durationSeconds) : 0;
  const evaluated = record.evaluations.filter((e) => e.accuracy !== null);
  const firstEval = record.evaluations[0];
  const lastEval = record.evaluations.at(-1);
  const accuracy =
    'off' in heldOut
      ? `not evaluated (${heldOut.off})`
      : s.accuracyBefore !== null && s.accuracyAfter !== null
        ? `${pct(s.accuracyBefore)} → ${pct(s.accuracyAfter)} (held-out ${heldOut.dataset}, ${heldOut.examples} examples, every ${heldOut.every} rounds; ` +
          `${s.accuracyAfter >= s.accuracyBefore ? '+' : ''}${((s.accuracyAfter - s.accuracyBefore) * 100).toFixed(2)} points)`
        : evaluated.length > 0
          ? `${pct(evaluated.at(-1)!.accuracy!)} after round ${evaluated.at(-1)!.round} (held-out ${heldOut.dataset})`
          : `no accuracy (held-out ${heldOut.dataset}: the model reports no correct count)`;
  const heldOutLoss = firstEval && lastEval && firstEval !== lastEval ? `; held-out ${num(firstEval.loss)} → ${num(lastEval.loss)}` : '';
  const rejected = Object.entries(s.rejected).map(([reason, n]) => `${reason} ${n}`).join(', ');
  const accepted = record.agents.reduce((n, a) => n + a.accepted, 0);
  const table: Array<[string, string]> = [
    [
      'rounds',
      `${s.rounds} this run (${report.stopped ? 'stopped before the last round' : 'done'}; ${report.failedAttempts} failed attempts), ` +
        `${training > 0 ? (s.rounds / training).toFixed(1) : '–'} rounds/s; ${s.wallSeconds.toFixed(1)} s from start to end (run.json wallSeconds, the wait for agents included)`,
    ],
    ['accuracy', accuracy],
    ['loss', `train ${num(s.lossFirst)} → ${num(s.lossLast)}${heldOutLoss}`],
    ['agents', `${s.agents} joined; per agent up ${bytes(s.bytesUpPerAgent)}, down ${bytes(s.bytesDownPerAgent)}`],
    ['results', `${accepted} accepted, ${s.late} late, ${s.dropped} dropped, ${Object.values(s.rejected).reduce((a, b) => a + b, 0)} rejected${rejected ? ` (${rejected})` : ''}`],
    ['update log', `${files.log} (${report.version} entries, head ${report.headHash.slice(0, 16)}…)`],
  ];
  if (s.privacy) {
    const dp = record.config.dp as { clip?: number } | undefined;
    table.splice(table.length - 1, 0, ['privacy', formatPrivacy(s.privacy, dp?.clip ?? Number.NaN)]);
  }
  if (report.recordPrivacy) table.splice(table.length - 1, 0, ['record privacy', formatRecordPrivacy(report.recordPrivacy)]);
  if (files.runRecord) table.push(['run record', `${files.runRecord} (mezo report renders it)`]);
  if (files.dashboard) table.push(['dashboard', `${files.dashboard}/ (closed with the run)`]);
  return table.map(([key, value]) => `${key.padEnd(16)} ${value}\n`).join('');
}
