/**
 * (Runs once, not per noise implementation: it does not depend on MEZO_NOISE.)
 * The arm64 prebuilt under qemu-user: scripts/arm64-proof.sh --noise-only (known answers, golden vectors and
 * digests equal to x64's, for the NEON kernel the addon picks there and for the portable one MEZO_NOISE_SIMD=generic
 * forces; `mezo info` naming the arm64 prebuilt and its neon kernel). It needs qemu-aarch64, an arm64 glibc and an
 * arm64 Node.js (MEZO_ARM64_NODE or the script's cache from a `--fetch` run); where one is missing the script
 * exits 77 and this test is skipped, saying which. CI does not install them. The full proof with `mezo train`
 * and cross-replay takes minutes under emulation: run the script by hand (docs/deploy.md).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

it('the arm64 prebuilt gives the same noise bits as x64 under qemu-user', (ctx) => {
  const run = spawnSync('bash', ['scripts/arm64-proof.sh', '--noise-only'], { cwd: ROOT, encoding: 'utf8' });
  if (run.status === 77) ctx.skip(run.stdout.trim());
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  expect(run.stdout).toMatch(/same digests on x64 \(\w+\), arm64 \(neon\) and arm64 \(generic\)/);
  expect(run.stdout).toContain('arm64 proof passed (noise only)');
}, 240_000);
