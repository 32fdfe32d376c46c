/**
 * The package installs like a product: `npm pack`'s tarball, installed into an empty project on a PATH with no
 * C++ toolchain (only node, npm and sh), runs the native noise kernel from the prebuilt addon, with nothing
 * compiled, trains, and runs the embedding example through the package's export names. Dependencies come from
 * npm's local cache (--prefer-offline), as on a device that mirrors them. The tarball is packed with
 * --ignore-scripts from the dist/ that `npm test`'s pretest built (a plain `npm pack` builds it through
 * `prepare`). Runs once, not per noise implementation (native- prefix).
 */
import { spawnSync, type SpawnSyncOptionsWithStringEncoding } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { prebuildFile } from '../../shared/noise/native-binding.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const shipped = existsSync(join(ROOT, prebuildFile(process.platform, process.arch)));

function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

describe.runIf(shipped && which('npm') !== undefined)('the npm package on a machine without a C++ toolchain', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-package-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // A PATH with node, npm (npm runs scripts through sh) and nothing else: no g++, make or python3.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  symlinkSync(existsSync(npmCli) ? npmCli : which('npm')!, join(bin, 'npm'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin, MEZO_LOG_LEVEL: 'silent' };
  delete env.MEZO_NOISE; // the installed package decides, as it would on a device
  delete env.MEZO_NATIVE_ADDON;
  delete env.MEZO_NATIVE_BUILD;
  delete env.NODE_OPTIONS;
  const run = (command: string, args: string[], options: Omit<SpawnSyncOptionsWithStringEncoding, 'encoding'> = {}) =>
    spawnSync(command, args, { env, ...options, encoding: 'utf8' });

  it('installs from the tarball without building, then runs the native kernel, trains and embeds', () => {
    expect(run('g++', ['--version']).error, 'g++ must be out of reach').toBeDefined();

    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(packed.status, packed.stderr).toBe(0);
    const tarball = join(dir, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);

    const app = join(dir, 'app');
    mkdirSync(app);
    // An operator's project: our install script allowed (it finds the prebuilt and builds nothing), the two
    // dependency scripts denied as in our own package.json.
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'device',
        version: '1.0.0',
        private: true,
        allowScripts: { [`file:${tarball}`]: true, 'onnxruntime-node': false, protobufjs: false },
      }),
    );
    const install = run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: app,
      env: { ...env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    expect(install.status, `${install.stdout}\n${install.stderr}`).toBe(0);
    expect(install.stdout).toContain(`using the prebuilt noise addon ${prebuildFile(process.platform, process.arch)}; nothing to build`);
    const installed = join(app, 'node_modules', 'mezo-fleet');
    expect(readdirSync(installed)).toEqual(expect.arrayContaining(['dist', 'prebuilds', 'bin', 'models', 'proto']));
    expect(existsSync(join(installed, 'build')), 'nothing was compiled').toBe(false);

    const mezo = join(app, 'node_modules', '.bin', 'mezo');
    const info = run(mezo, ['info', '--json'], { cwd: app });
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      noise: 'native',
      addon: `prebuilt ${prebuildFile(process.platform, process.arch)}`,
    });

    const train = run(mezo, ['train', '--steps', '5', '--eval-every', '0', '--out', join(app, 'run'), '--json'], { cwd: app });
    expect(train.status, train.stderr).toBe(0);
    const report = JSON.parse(train.stdout) as { steps: number; logVersion: number };
    expect(report).toMatchObject({ steps: 5, logVersion: 5 });

    // The library entry points resolve from a consumer's project: the embedding example, copied into the app,
    // imports mezo-fleet/coordinator, /agent, ... from node_modules and checks its replicas against the log.
    copyFileSync(join(ROOT, 'examples', 'embed.mjs'), join(app, 'embed.mjs'));
    const embed = run('node', ['embed.mjs', join(app, 'embed.log')], { cwd: app });
    expect(embed.status, embed.stderr).toBe(0);
    expect(JSON.parse(embed.stdout.trim().split('\n').at(-1)!)).toMatchObject({ roundsRun: 5, version: 5 });
  }, 240_000);
});
