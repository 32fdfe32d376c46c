/**
 * The agent's core runs in a browser (edge-agent/browser/), so no module it loads from edge-agent/ may import a
 * Node built-in: the Node-only parts (worker backend, health server, device load) come in through AgentInit, and
 * the in-process backend loads its file checkpoint only when no other is given. Walks the value imports from agent.ts within edge-agent/ (type-only imports are erased by
 * the compiler and load nothing); shared/ modules are outside the walk because the browser build swaps the ones
 * that need Node (scripts/build-browser-agent.mjs).
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const agentDir = join(root, 'edge-agent');

/** The specifiers a module loads when it loads (imports and re-exports that are not `type`-only), and on demand (`import()`). */
function importsOf(source: string): { static: string[]; dynamic: string[] } {
  const found: string[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const m of source.matchAll(statement)) {
    if (m[2]) continue;
    const names = m[3]!.trim();
    // `import { type A, type B } from` loads nothing either.
    const braced = /^\{([^}]*)\}$/.exec(names);
    if (braced && braced[1]!.split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '))) continue;
    found.push(m[4]!);
  }
  for (const m of source.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  const dynamic = [...source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return { static: found, dynamic };
}

const valueImports = (source: string): string[] => importsOf(source).static;

const isNodeBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec);

interface Module {
  /** Node built-ins it imports when it loads. */
  builtins: string[];
  /** What it imports only on demand. */
  lazy: string[];
}

/** Every edge-agent/ module reachable from `entry` by imports made when a module loads. */
function walk(entry: string): Map<string, Module> {
  const seen = new Map<string, Module>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const specs = importsOf(readFileSync(file, 'utf8'));
    seen.set(file, { builtins: specs.static.filter(isNodeBuiltin), lazy: specs.dynamic });
    for (const spec of specs.static) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (target.startsWith(agentDir + '/') && !target.includes('/browser/')) queue.push(target);
    }
  }
  return seen;
}

const offendersIn = (modules: Map<string, Module>): string[] =>
  [...modules].filter(([, m]) => m.builtins.length > 0).map(([file, m]) => `${relative(agentDir, file)}: ${m.builtins.join(', ')}`);

describe('the agent core', () => {
  it('loads no Node built-in from edge-agent/, in every room agent.ts composes', () => {
    const modules = walk(join(agentDir, 'agent.ts'));
    const names = [...modules.keys()].map((file) => relative(agentDir, file)).sort();
    // The walk must reach the rooms, or it proves nothing.
    for (const room of ['agent.ts', 'connection.ts', 'catch-up.ts', 'chain-follower.ts', 'heartbeat.ts', 'task-runner.ts', 'evaluation.ts', 'batch-cursor.ts']) {
      expect(names).toContain(room);
    }
    expect(offendersIn(modules)).toEqual([]);
    expect([...modules.values()].flatMap((m) => m.lazy)).toEqual([]);
  });

  it('the in-process backend the browser agent runs on loads no Node built-in; its file checkpoint is loaded only on demand', () => {
    const modules = walk(join(agentDir, 'mezo-backend.ts'));
    expect([...modules.keys()].map((file) => relative(agentDir, file))).toEqual(expect.arrayContaining(['mezo-backend.ts', 'slab-checkpoint.ts', 'mezo-evaluator.ts']));
    expect(offendersIn(modules)).toEqual([]);
    expect(modules.get(join(agentDir, 'mezo-backend.ts'))!.lazy).toEqual(['./file-slab-checkpoint.js']);
    expect(valueImports(readFileSync(join(agentDir, 'file-slab-checkpoint.ts'), 'utf8'))).toContain('node:fs');
  });

  it('the walk sees a Node import where there is one (the worker backend)', () => {
    const modules = walk(join(agentDir, 'worker-backend.ts'));
    expect(modules.get(join(agentDir, 'worker-backend.ts'))!.builtins).toContain('node:worker_threads');
    expect(valueImports("import type { X } from 'node:fs';\nimport { type Y } from 'node:os';\nimport { z } from 'node:path';\nexport { w } from './w.js';")).toEqual(['node:path', './w.js']);
  });
});

describe('the in-process backend', () => {
  it('takes its reload checkpoint from the caller when given one, and restores the weights exactly', async () => {
    const { InProcessBackend } = await import('../../../edge-agent/mezo-backend.js');
    const { MemorySlabCheckpoint } = await import('../../../edge-agent/slab-checkpoint.js');
    const { loadDefaultModel } = await import('../../../shared/model/index.js');
    const { noise } = await import('../../../shared/noise/index.js');
    const calls = { save: 0, restore: 0, lengths: [] as number[] };
    const checkpoint = (length: number) => {
      calls.lengths.push(length);
      const inner = new MemorySlabCheckpoint();
      return {
        save: (slab: Float32Array) => (calls.save++, inner.save(slab)),
        restore: (slab: Float32Array) => (calls.restore++, inner.restore(slab)),
        close: () => inner.close(),
      };
    };
    const prepared = await loadDefaultModel();
    const backend = await InProcessBackend.create(prepared, noise, { intraOpThreads: 1, checkpoint });
    try {
      const before = await backend.sha256();
      const size = 8;
      const batch = { features: new Float32Array(size * 784).fill(0.5), labels: new BigInt64Array(size), size, shape: [size, 784] };
      await backend.evaluate([1n, 2n], 1e-3, batch);
      expect(calls.lengths).toEqual([prepared.manifest.slabLength]);
      expect(calls.save).toBeGreaterThan(0);
      expect(calls.restore).toBeGreaterThan(0);
      expect(await backend.sha256()).toBe(before);
    } finally {
      await backend.close();
    }
    await expect(InProcessBackend.create(prepared, noise, { checkpoint: 'memory' as never })).rejects.toThrow('options.checkpoint must be a function');
  });
});
