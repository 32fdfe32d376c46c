/**
 * The arm64 prebuilt's bits for the noise suite: scripts/arm64-proof.sh --noise-only (an arm64 Node.js under
 * qemu-user runs the known answers, golden vectors and digests with the NEON kernel the addon picks there and with
 * the portable one MEZO_NOISE_SIMD=generic forces, each compared with x64). Bits only: emulated time says nothing
 * about an arm64 device, so no time is reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One arm64 kernel's result, from the script's `noise-check.mjs` report for it. */
export interface Arm64Kernel {
  /** The kernel the addon ran ('neon', 'generic'). */
  simd: string;
  /** Known answers and golden vectors passed, and every digest equals x64's. */
  sameBitsAsX64: boolean;
}

export interface Arm64Bits {
  /**
   * 'same bits as x64 (neon, generic)' naming every arm64 kernel checked, 'DIFFERENT (…)' naming those that were
   * not, or 'skipped' (qemu or an arm64 Node.js missing). The bench table shows it as the row's implementation.
   */
  status: string;
  /** The arm64 kernels checked, e.g. 'neon, generic'; empty when skipped. */
  kernels: Arm64Kernel[];
  /** The script's last line: what passed, failed or was missing. */
  detail: string;
}

interface CheckReport {
  simd: string;
  failures: string[];
  digests: Record<string, string>;
}

/** The JSON report printed after `label:` in the script's output, if it is there and parses. */
function reportAfter(output: string, label: string): CheckReport | undefined {
  const line = output.split('\n').find((l) => l.startsWith(`${label}:`));
  if (line === undefined) return undefined;
  try {
    return JSON.parse(line.slice(label.length + 1).trim()) as CheckReport;
  } catch {
    return undefined;
  }
}

/** Runs the check; undefined when the script is not there (an installed package has no scripts/arm64-proof.sh). */
export function checkArm64Bits(): Arm64Bits | undefined {
  const root = ['../../', '../../../'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((dir) => existsSync(`${dir}scripts/arm64-proof.sh`));
  if (root === undefined) return undefined;
  const run = spawnSync('bash', ['scripts/arm64-proof.sh', '--noise-only'], { cwd: root, encoding: 'utf8' });
  const detail = `${run.stdout}${run.stderr}`.trim().split('\n').pop() ?? '';
  if (run.status === 77) return { status: 'skipped', kernels: [], detail };
  const x64 = reportAfter(run.stdout, 'x64');
  const kernels: Arm64Kernel[] = [];
  for (const label of ['arm64', 'arm64 generic']) {
    const report = reportAfter(run.stdout, label);
    if (report === undefined) continue;
    const same = x64 !== undefined && report.failures.length === 0 && JSON.stringify(report.digests) === JSON.stringify(x64.digests);
    kernels.push({ simd: report.simd, sameBitsAsX64: same });
  }
  const allSame = run.status === 0 && kernels.length > 0 && kernels.every((k) => k.sameBitsAsX64);
  const names = (list: Arm64Kernel[]) => list.map((k) => k.simd).join(', ');
  const status = allSame
    ? `same bits as x64 (${names(kernels)})`
    : `DIFFERENT (${names(kernels.filter((k) => !k.sameBitsAsX64)) || 'no report'})`;
  return { status, kernels, detail };
}
