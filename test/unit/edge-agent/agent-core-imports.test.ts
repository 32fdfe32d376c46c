/**
 * The agent's core runs in a browser (edge-agent/browser/), so no module it loads from edge-agent/ may import a
 * Node built-in: the Node-only parts (worker backend, health server, file checkpoints, device load) come in
 * through AgentInit. Walks the value imports from agent.ts within edge-agent/ (type-only imports are erased by
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

/** The specifiers a module loads at run time: imports and re-exports that are not `type`-only. */
function valueImports(source: string): string[] {
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
  for (const m of source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

const isNodeBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec);

/** Every edge-agent/ module reachable from `entry` by value imports, with the Node built-ins each imports. */
function walk(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const specs = valueImports(readFileSync(file, 'utf8'));
    seen.set(file, specs.filter(isNodeBuiltin));
    for (const spec of specs) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (target.startsWith(agentDir + '/') && !target.includes('/browser/')) queue.push(target);
    }
  }
  return seen;
}

describe('the agent core', () => {
  it('loads no Node built-in from edge-agent/, in every room agent.ts composes', () => {
    const modules = walk(join(agentDir, 'agent.ts'));
    const names = [...modules.keys()].map((file) => relative(agentDir, file)).sort();
    // The walk must reach the rooms, or it proves nothing.
    for (const room of ['agent.ts', 'connection.ts', 'catch-up.ts', 'chain-follower.ts', 'heartbeat.ts', 'task-runner.ts', 'evaluation.ts', 'batch-cursor.ts']) {
      expect(names).toContain(room);
    }
    const offenders = [...modules].filter(([, builtins]) => builtins.length > 0).map(([file, builtins]) => `${relative(agentDir, file)}: ${builtins.join(', ')}`);
    expect(offenders).toEqual([]);
  });

  it('the walk sees a Node import where there is one (the worker backend)', () => {
    const modules = walk(join(agentDir, 'worker-backend.ts'));
    expect(modules.get(join(agentDir, 'worker-backend.ts'))).toContain('node:worker_threads');
    expect(valueImports("import type { X } from 'node:fs';\nimport { type Y } from 'node:os';\nimport { z } from 'node:path';\nexport { w } from './w.js';")).toEqual(['node:path', './w.js']);
  });
});
