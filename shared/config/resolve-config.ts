/**
 * Layered configuration: schema defaults < config file (JSON) < MEZO_* environment variables < command-line
 * flags, merged once and parsed once by zod into a fully resolved object. An error names the field and the
 * layer its bad value came from, e.g. "config: schedule.lr: Too small: expected number to be >0 (from --lr)".
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Plain = Record<string, unknown>;

/** How one environment variable maps onto the config: its dotted path and how its text is parsed. */
export interface EnvBinding {
  path: string;
  type: 'string' | 'number' | 'boolean' | 'json';
  /** Reads the text instead of `type` (the flag's own parser, e.g. a size such as "512MiB"); a throw names the variable. */
  parse?: (text: string) => unknown;
}

export interface ConfigLayers {
  /** A JSON file of (part of) the config. */
  file?: string;
  /** The environment to read (default process.env) and which variables map where. */
  env?: NodeJS.ProcessEnv;
  envBindings?: Record<string, EnvBinding>;
  /** Flags given on the command line: dotted paths to values. Undefined values are ignored. */
  flags?: Record<string, unknown>;
  /** Names the flag behind each dotted path, for error messages (e.g. 'schedule.lr' → '--lr'). */
  flagNames?: Record<string, string>;
}

function isPlain(value: unknown): value is Plain {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function setPath(target: Plain, path: string, value: unknown, sources: Map<string, string>, source: string): void {
  const keys = path.split('.');
  let node = target;
  keys.slice(0, -1).forEach((key) => {
    if (!isPlain(node[key])) node[key] = {};
    node = node[key] as Plain;
  });
  node[keys.at(-1)!] = value;
  sources.set(path, source);
}

function mergeInto(target: Plain, layer: Plain, sources: Map<string, string>, source: string, prefix = ''): void {
  for (const [key, value] of Object.entries(layer)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlain(value) && isPlain(target[key])) mergeInto(target[key] as Plain, value, sources, source, path);
    else {
      target[key] = value;
      sources.set(path, source);
    }
  }
}

function parseEnvValue(name: string, text: string, type: EnvBinding['type'], parse: EnvBinding['parse']): unknown {
  if (parse) {
    try {
      return parse(text);
    } catch (err) {
      throw new ConfigError(`config: ${name}: ${(err as Error).message}, got ${JSON.stringify(text)}`, { cause: err });
    }
  }
  switch (type) {
    case 'string':
      return text;
    case 'number': {
      const value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`config: ${name} must be a number, got ${JSON.stringify(text)}`);
      return value;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      throw new ConfigError(`config: ${name} must be true or false, got ${JSON.stringify(text)}`);
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new ConfigError(`config: ${name} is not valid JSON`, { cause: err });
      }
  }
}

/** The source of the value at `path`, or of its nearest configured ancestor. */
function sourceOf(path: string, sources: Map<string, string>): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const source = sources.get(p);
    if (source) return source;
  }
  return 'defaults';
}

export function resolveConfig<S extends z.ZodType>(schema: S, layers: ConfigLayers = {}): z.output<S> {
  const merged: Plain = {};
  const sources = new Map<string, string>();
  if (layers.file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(layers.file, 'utf8'));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      throw new ConfigError(`config file ${layers.file}: ${reason}`, { cause: err });
    }
    if (!isPlain(parsed)) throw new ConfigError(`config file ${layers.file}: must hold a JSON object`);
    mergeInto(merged, parsed, sources, layers.file);
  }
  const env = layers.env ?? process.env;
  for (const [name, binding] of Object.entries(layers.envBindings ?? {})) {
    const text = env[name];
    if (text !== undefined) setPath(merged, binding.path, parseEnvValue(name, text, binding.type, binding.parse), sources, name);
  }
  for (const [path, value] of Object.entries(layers.flags ?? {})) {
    if (value !== undefined) setPath(merged, path, value, sources, layers.flagNames?.[path] ?? `--${path}`);
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    throw new ConfigError(`config: ${path || '(root)'}: ${issue.message} (from ${sourceOf(path, sources)})`);
  }
  return result.data;
}
