/**
 * The arm64 prebuilt's bits for the noise suite: scripts/arm64-proof.sh --noise-only (an arm64 Node.js under
 * qemu-user, the known answers, golden vectors and digests compared with x64). Bits only: emulated time says
 * nothing about an arm64 device, so no time is reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Arm64Bits {
  /** 'same bits as x64', 'DIFFERENT', or 'skipped' (qemu or an arm64 Node.js missing). */
  status: 'same bits as x64' | 'DIFFERENT' | 'skipped';
  /** The script's last line: what passed, failed or was missing. */
  detail: string;
}

/** Runs the check; undefined when the script is not there (an installed package has no scripts/arm64-proof.sh). */
export function checkArm64Bits(): Arm64Bits | undefined {
  const root = ['../../', '../../../'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((dir) => existsSync(`${dir}scripts/arm64-proof.sh`));
  if (root === undefined) return undefined;
  const run = spawnSync('bash', ['scripts/arm64-proof.sh', '--noise-only'], { cwd: root, encoding: 'utf8' });
  const detail = `${run.stdout}${run.stderr}`.trim().split('\n').pop() ?? '';
  if (run.status === 77) return { status: 'skipped', detail };
  return { status: run.status === 0 ? 'same bits as x64' : 'DIFFERENT', detail };
}
