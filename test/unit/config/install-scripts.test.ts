import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// npm 11 lists every dependency whose install script has no allowScripts entry on each install (and a later npm
// blocks them): each one needs a decision in package.json, and onnxruntime-node's must stay denied because it
// downloads GPU libraries from outside.
const root = new URL('../../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { allowScripts?: Record<string, boolean> };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { hasInstallScript?: boolean }>;
};

function withInstallScripts(): string[] {
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && entry.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
    .sort();
}

describe('install-script policy', () => {
  it('has an allowScripts decision for every locked dependency with an install script', () => {
    const scripted = withInstallScripts();
    expect(scripted).toContain('onnxruntime-node');
    const undecided = scripted.filter((name) => typeof pkg.allowScripts?.[name] !== 'boolean');
    expect(undecided).toEqual([]);
  });

  it("denies onnxruntime-node's GPU download", () => {
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
  });
});
