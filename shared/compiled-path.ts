import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled JavaScript file for a module next to `from` (an import.meta.url). Worker threads and child
 * processes need a .js file: from dist/ it is the sibling itself; from the TypeScript sources (tests run them
 * directly) it is the same path under dist/, which `npm test` builds first.
 */
export function compiledSibling(from: string, relativeJs: string): string {
  const sibling = fileURLToPath(new URL(relativeJs, from));
  if (existsSync(sibling)) return sibling;
  const source = fileURLToPath(from);
  const root = fileURLToPath(new URL('..', import.meta.url));
  if (!source.startsWith(root)) return sibling;
  const compiled = fileURLToPath(new URL(relativeJs, `file://${root}dist/${source.slice(root.length)}`));
  if (!existsSync(compiled)) {
    throw new Error(`${relativeJs} is not built: run \`npm run build\` (looked for ${sibling} and ${compiled})`);
  }
  return compiled;
}
