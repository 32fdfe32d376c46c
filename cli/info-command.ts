import type { Command } from 'commander';
import type { NativeAddonReport } from '../shared/noise/index.js';

/** One line on why this addon file was chosen: what was passed over before it, or that it came first. */
function addonChoiceReason(report: NativeAddonReport): string {
  const passed = report.candidates.filter((c) => c.rejected !== undefined).map((c) => `${c.file}: ${c.rejected}`);
  if (report.loaded?.source === 'prebuilt') return `shipped for ${report.platform}, no compiler needed`;
  const forced = report.preference === 'built' ? 'MEZO_NATIVE_ADDON=built' : undefined;
  return [forced, ...passed].filter(Boolean).join('; ') || 'built on this machine';
}

/** `mezo info`: what this installation runs on — the noise implementation, its vector path and the runtime. */
export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('show the noise implementation (native addon or TypeScript), its SIMD path and the runtime')
    .option('--json', 'print JSON instead of text')
    .action(async (options: { json?: boolean }) => {
      const { nativeAddonReport, noise, noiseFallbackReason } = await import('../shared/noise/index.js');
      // With MEZO_NOISE=js the addon was never looked for; the report below looks now, so it still says what a
      // native run would load.
      const addon = nativeAddonReport();
      const info = {
        noise: noise.kind,
        simd: noise.kernel.simd,
        noiseThreads: noise.threads,
        // The file that runs (prebuilt or built here), or why the TypeScript kernel runs instead.
        addon: addon.loaded
          ? `${noise.kind === 'native' ? '' : 'not used, would be '}${addon.loaded.source} ${addon.loaded.file}`
          : 'none',
        why: noise.kind === 'native' ? addonChoiceReason(addon) : (noiseFallbackReason() ?? 'TypeScript kernel'),
        node: process.versions.node,
        platform: addon.platform,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ...info, addonCandidates: addon.candidates.map(({ path: _path, ...c }) => c) })}\n`);
        return;
      }
      for (const [key, value] of Object.entries(info)) process.stdout.write(`${key.padEnd(13)} ${value}\n`);
    });
}
