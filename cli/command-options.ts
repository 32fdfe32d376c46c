/**
 * A command's options declared once: each names its config key (a dotted path into the command's zod schema),
 * its help text and, where it is not the usual one, its argument placeholder or parser. Everything else is
 * derived from that one declaration and the schema:
 *   - the flag: `--` + the option's name in kebab case (`agentsPerRound` → `--agents-per-round`), or
 *     `--no-<name>` for a switch that turns a default-on boolean off;
 *   - the MEZO_* variable: the command's prefix + the name in upper snake case (`MEZO_COORDINATOR_AGENTS_PER_ROUND`),
 *     parsed as the schema's type at the key (number, boolean, or text for strings, enums and unions), or by the
 *     flag's own parser when it has one;
 *   - whether the flag takes a value (a boolean key makes a switch) and how commander parses it (a number key
 *     gets a finite-number parser);
 *   - the layers: defaults < --config file < MEZO_* < flags, parsed once by the schema (shared/config).
 * A key the schema does not hold is refused when the command is defined, so a typo cannot ship.
 */
import type { Command } from 'commander';
import type { z } from 'zod';
import { resolveConfig, type EnvBinding } from '../shared/config/index.js';
import { number } from './option-parsing.js';

export interface OptionSpec {
  /** Where the value goes in the config: a dotted path into the schema (also the config-file key). */
  key: string;
  help: string;
  /** The value's placeholder in --help (default `<n>` for a number, `<value>` otherwise; none for a switch). */
  arg?: string;
  /** Parses the flag's text (default: a finite number for a number key, the text itself otherwise). */
  parse?: (value: string) => unknown;
  /** The MEZO_* name, where an older name than the derived one is kept (e.g. MEZO_AGENT_ID for --agent-id). */
  env?: string;
  /** A `--no-<name>` switch: given, it sets the (default-on) boolean to false. */
  negate?: boolean;
}

/**
 * The two flags that are not config values: `--config <file>` names the file layer, `--json` chooses the output.
 * They take a place in the list (so --help keeps its order) but have no key and no variable.
 */
export interface CommandFlag {
  key?: undefined;
  help: string;
  arg?: string;
}

export type OptionSpecs = Record<string, OptionSpec | CommandFlag>;

const COMMAND_FLAGS = new Set(['config', 'json']);

/** `--config <file>`, with the command's layers spelled out. */
export const configFlag = (prefix: string): CommandFlag => ({ arg: '<file>', help: `JSON config file (defaults < file < ${prefix}_* env < flags)` });

type Kind = 'number' | 'boolean' | 'string' | 'json';

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
  values?: unknown[];
}

const defOf = (schema: z.ZodType): ZodDef => (schema as unknown as { _zod: { def: ZodDef } })._zod.def;

/** The schema under wrappers that do not change what a value must be (optional, defaults, preprocess, refine). */
function unwrap(schema: z.ZodType): z.ZodType {
  for (let s = schema; ; ) {
    const def = defOf(s);
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        s = def.innerType!;
        break;
      case 'pipe':
        // z.preprocess(f, schema) is pipe(transform, schema); schema.transform(f) is pipe(schema, transform).
        s = defOf(def.in!).type === 'transform' ? def.out! : def.in!;
        break;
      case 'lazy':
        s = def.getter!();
        break;
      default:
        return s;
    }
  }
}

/** The schema of the value at a dotted path, or undefined when the schema holds no such key. */
export function schemaAt(schema: z.ZodType, path: string): z.ZodType | undefined {
  let node: z.ZodType | undefined = schema;
  for (const key of path.split('.')) {
    if (!node) return undefined;
    const def = defOf(unwrap(node));
    if (def.type === 'object') node = def.shape![key];
    else if (def.type === 'union') {
      // An object among the alternatives that holds the key (e.g. a block given as an object or a shorthand).
      node = def.options!.map((o) => defOf(unwrap(o))).find((d) => d.type === 'object' && d.shape![key] !== undefined)?.shape![key];
    } else return undefined;
  }
  return node;
}

/** The schema's own default at a dotted path ({ value }), or undefined when the key has none of its own. */
export function defaultAt(schema: z.ZodType, path: string): { value: unknown } | undefined {
  for (let s = schemaAt(schema, path); s; ) {
    const def = defOf(s) as ZodDef & { defaultValue?: unknown };
    if (def.type === 'default') return { value: def.defaultValue };
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'readonly') s = def.innerType;
    else if (def.type === 'pipe') s = defOf(def.in!).type === 'transform' ? def.out : def.in;
    else return undefined;
  }
  return undefined;
}

/** How a value of this schema is read from text: number, boolean, JSON for objects and arrays, else the text. */
function kindOf(schema: z.ZodType): Kind {
  const def = defOf(unwrap(schema));
  switch (def.type) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
    case 'record':
    case 'array':
    case 'tuple':
      return 'json';
    case 'literal':
      return def.values!.every((v) => typeof v === 'number') ? 'number' : def.values!.every((v) => typeof v === 'boolean') ? 'boolean' : 'string';
    default:
      // Strings, enums, and unions such as a seed (a number or its decimal text) or a size ("512MiB" or bytes).
      return 'string';
  }
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

/** One option as derived: what commander registers, the variable and the key. */
export interface DerivedOption {
  /** commander's attribute name (the name the option was declared under). */
  name: string;
  /** As given on the command line: `--agents-per-round`, `--no-worker`. */
  flag: string;
  /** The full commander spelling, `--agents-per-round <m>`. */
  flags: string;
  help: string;
  parse: ((value: string) => unknown) | undefined;
  /** Undefined for --config and --json, which are not config values. */
  key: string | undefined;
  env: string | undefined;
  kind: Kind | undefined;
  negate: boolean;
}

export interface CommandOptions<S extends z.ZodType> {
  readonly schema: S;
  /** The MEZO_* prefix, e.g. MEZO_COORDINATOR. */
  readonly prefix: string;
  /** Every flag in --help order, --config and --json included. */
  readonly options: readonly DerivedOption[];
  /** MEZO_* name → where it goes and how its text is read (the env layer). */
  readonly env: Readonly<Record<string, EnvBinding>>;
  /** Adds the flags to a commander command, in declaration order. */
  register(command: Command): Command;
  /** Defaults < --config file < MEZO_* (from `env`) < flags, parsed by the schema; errors name the field and its layer. */
  resolve(flags: Record<string, unknown>, env?: NodeJS.ProcessEnv): z.output<S>;
}

export function defineCommandOptions<S extends z.ZodType>(schema: S, prefix: string, specs: OptionSpecs): CommandOptions<S> {
  if (!/^MEZO(_[A-Z0-9]+)+$/.test(prefix)) throw new TypeError(`command options: prefix must look like MEZO_NAME, got ${JSON.stringify(prefix)}`);
  const options: DerivedOption[] = [];
  const env: Record<string, EnvBinding> = {};
  const keys = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.key === undefined) {
      if (!COMMAND_FLAGS.has(name)) throw new TypeError(`command options ${prefix}: --${kebab(name)} needs a config key (only --config and --json have none)`);
      const flag = `--${kebab(name)}`;
      options.push({ name, flag, flags: spec.arg ? `${flag} ${spec.arg}` : flag, help: spec.help, parse: undefined, key: undefined, env: undefined, kind: undefined, negate: false });
      continue;
    }
    const at = schemaAt(schema, spec.key);
    if (!at) throw new TypeError(`command options ${prefix}: --${kebab(name)}: the schema has no key ${spec.key}`);
    const other = keys.get(spec.key);
    if (other !== undefined) throw new TypeError(`command options ${prefix}: --${kebab(name)} and --${kebab(other)} both set ${spec.key}`);
    keys.set(spec.key, name);
    const kind = kindOf(at);
    const negate = spec.negate === true;
    if (negate && kind !== 'boolean') throw new TypeError(`command options ${prefix}: --no-${kebab(name)} needs a boolean key, ${spec.key} is not one`);
    const flag = negate ? `--no-${kebab(name)}` : `--${kebab(name)}`;
    const arg = kind === 'boolean' ? undefined : (spec.arg ?? (kind === 'number' ? '<n>' : '<value>'));
    const variable = spec.env ?? `${prefix}_${snake(name)}`;
    if (env[variable]) throw new TypeError(`command options ${prefix}: ${variable} is derived twice`);
    // A flag with its own parser (a size) reads its variable the same way, so "512MiB" works in both.
    env[variable] = { path: spec.key, type: kind, ...(spec.parse ? { parse: spec.parse } : {}) };
    options.push({
      name,
      flag,
      flags: arg ? `${flag} ${arg}` : flag,
      help: spec.help,
      parse: spec.parse ?? (kind === 'number' ? number : undefined),
      key: spec.key,
      env: variable,
      kind,
      negate,
    });
  }
  return {
    schema,
    prefix,
    options,
    env,
    register(command) {
      for (const o of options) {
        if (o.parse) command.option(o.flags, o.help, o.parse);
        else command.option(o.flags, o.help);
      }
      // The variables are not listed flag by flag (the lines would double); the rule and its exceptions are.
      const keyed = options.filter((o) => o.env !== undefined);
      const example = keyed.find((o) => !o.negate && /[A-Z]/.test(o.name) && o.env === `${prefix}_${snake(o.name)}`);
      const negated = keyed.find((o) => o.negate);
      const kept = keyed.filter((o) => o.env !== `${prefix}_${snake(o.name)}`).map((o) => `${o.flag}: ${o.env}`);
      const lines = [
        '',
        'Every flag but --config and --json is also a variable and a key of the --config file. The variable is',
        `${prefix}_ and the flag's name in capitals with _ for -` +
          (example ? ` (${example.flag}: ${example.env}` + (negated ? `; ${negated.flag}: ${negated.env}=false)` : ')') : '') +
          (kept.length > 0 ? ',' : '.'),
        ...(kept.length > 0 ? [`except ${kept.join(', ')}.`] : []),
        'Flags win over variables, variables over the file, the file over the defaults.',
        '',
      ];
      return command.addHelpText('after', lines.join('\n'));
    },
    resolve(flags, environment = process.env) {
      const layered: Record<string, unknown> = {};
      const flagNames: Record<string, string> = {};
      for (const o of options) {
        const value = flags[o.name];
        // commander gives a --no-x switch the value true when it is absent: only its `false` was asked for.
        if (o.key === undefined || value === undefined || (o.negate && value !== false)) continue;
        layered[o.key] = value;
        flagNames[o.key] = o.flag;
      }
      return resolveConfig(schema, {
        env: environment,
        envBindings: env,
        flags: layered,
        flagNames,
        ...(typeof flags.config === 'string' ? { file: flags.config } : {}),
      });
    },
  };
}
