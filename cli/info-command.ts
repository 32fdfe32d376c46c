import type { Command } from 'commander';

/** `mezo info`: what this installation runs on — the noise implementation, its vector path and the runtime. */
export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('show the noise implementation (native addon or TypeScript), its SIMD path and the runtime')
    .option('--json', 'print JSON instead of text')
    .action(async (options: { json?: boolean }) => {
      const { noise } = await import('../shared/noise/index.js');
      const info = {
        noise: noise.kind,
        simd: noise.kernel.simd,
        noiseThreads: noise.threads,
        node: process.versions.node,
        platform: `${process.platform}-${process.arch}`,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(info)}\n`);
        return;
      }
      for (const [key, value] of Object.entries(info)) process.stdout.write(`${key.padEnd(13)} ${value}\n`);
    });
}
