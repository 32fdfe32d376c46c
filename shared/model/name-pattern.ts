/**
 * Selecting initializers by name. A pattern is a RegExp, a string written as a regex literal ("/attn|mlp/i"),
 * or a glob where `*` matches any run of characters (dots and slashes included, since exporters use both as
 * separators), `?` one character and `{a,b}` one of the alternatives. Globs and regex literals match the whole
 * name; a RegExp object is used as given (it matches anywhere unless anchored).
 */
import { ModelPreparationError } from './errors.js';

export type NamePattern = string | RegExp;

const REGEX_LITERAL = /^\/(.+)\/([a-z]*)$/s;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function globToRegex(glob: string): RegExp {
  let source = '';
  let depth = 0;
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else if (ch === '{') {
      source += '(?:';
      depth++;
    } else if (ch === '}' && depth > 0) {
      source += ')';
      depth--;
    } else if (ch === ',' && depth > 0) source += '|';
    else source += escapeRegex(ch);
  }
  if (depth > 0) throw new ModelPreparationError(`trainable pattern ${JSON.stringify(glob)} has an unclosed "{"`);
  return new RegExp(`^(?:${source})$`, 's');
}

/** Compiles one pattern; throws ModelPreparationError naming `what` when it is not a valid pattern. */
export function compilePattern(pattern: NamePattern, what = 'trainable'): RegExp {
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new ModelPreparationError(`${what} must be a non-empty glob, "/regex/" string or RegExp, got ${JSON.stringify(pattern)}`);
  }
  const literal = REGEX_LITERAL.exec(pattern);
  if (literal) {
    try {
      return new RegExp(`^(?:${literal[1]!})$`, literal[2]!.replace(/[gy]/g, ''));
    } catch (err) {
      throw new ModelPreparationError(`${what} ${pattern} is not a valid regular expression: ${(err as Error).message}`, { cause: err });
    }
  }
  return globToRegex(pattern);
}

/** A predicate that is true when a name matches any of the patterns. */
export function nameMatcher(patterns: NamePattern | readonly NamePattern[], what = 'trainable'): (name: string) => boolean {
  const list = Array.isArray(patterns) ? patterns : [patterns as NamePattern];
  if (list.length === 0) throw new ModelPreparationError(`${what} must name at least one pattern`);
  const compiled = list.map((p) => compilePattern(p, what));
  return (name) => compiled.some((re) => re.test(name));
}

/** A human-readable form of the patterns, for error messages. */
export function describePatterns(patterns: NamePattern | readonly NamePattern[]): string {
  const list = Array.isArray(patterns) ? patterns : [patterns as NamePattern];
  return list.map((p) => (p instanceof RegExp ? String(p) : JSON.stringify(p))).join(', ');
}
