import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defaultAt, defineCommandOptions, schemaAt, type CommandOptions } from '../../../cli/command-options.js';
import { agentOptions, registerAgentCommand } from '../../../cli/agent-command.js';
import { coordinatorOptions, registerCoordinatorCommand } from '../../../cli/coordinator-command.js';
import { registerSimulateCommand, simulateOptions } from '../../../cli/simulate-command.js';
import { registerTrainCommand, trainOptions } from '../../../cli/train-command.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-command-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const commands: Array<[string, CommandOptions<z.ZodType>, (program: Command) => void]> = [
  ['coordinator', coordinatorOptions, registerCoordinatorCommand],
  ['agent', agentOptions, registerAgentCommand],
  ['simulate', simulateOptions, registerSimulateCommand],
  ['train', trainOptions, registerTrainCommand],
];

function configFile(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

describe('command options derived from one declaration', () => {
  it.each(commands)('every flag of mezo %s has a MEZO_* variable and a config key the schema holds', (name, options, register) => {
    const program = new Command();
    register(program);
    const command = program.commands.find((c) => c.name() === name)!;
    const registered = command.options.map((o) => o.long!);
    // commander's flags are exactly the declared ones, in declaration order.
    expect(registered).toEqual(options.options.map((o) => o.flag));
    const prefix = `MEZO_${name.toUpperCase()}_`;
    for (const o of options.options) {
      if (o.flag === '--config' || o.flag === '--json') {
        expect(o.key, o.flag).toBeUndefined();
        continue;
      }
      expect(o.key, `${o.flag} has a config key`).toBeTypeOf('string');
      expect(schemaAt(options.schema, o.key!), `${o.flag}: the schema holds ${o.key}`).toBeDefined();
      expect(o.env, `${o.flag} has a variable`).toMatch(new RegExp(`^${prefix}[A-Z0-9_]+$`));
      expect(options.env[o.env!]).toMatchObject({ path: o.key });
    }
    // One variable per flag, and no variable without a flag.
    expect(Object.keys(options.env).sort()).toEqual(options.options.flatMap((o) => (o.env ? [o.env] : [])).sort());
    // --help states the rule, and names the variables that do not follow it.
    let help = '';
    command.configureOutput({ writeOut: (text) => (help += text) });
    command.outputHelp();
    expect(help).toContain(`The variable is\n${prefix} and the flag's name in capitals with _ for -`);
    for (const o of options.options) if (o.env && o.env !== `${prefix}${o.name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`) expect(help).toContain(`${o.flag}: ${o.env}`);
  });

  it('keeps every variable the docs and the deployment files name', () => {
    const files = [
      'README.md',
      ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => join('docs', f)),
      ...readdirSync('deploy', { recursive: true, encoding: 'utf8' }).map((f) => join('deploy', f)).filter((f) => statSync(f).isFile()),
    ];
    const named = new Set<string>();
    for (const file of files) {
      // Whole names only ("\nMEZO_X=" in a printf counts): "MEZO_AGENT_DP_*" or "MEZO_COORDINATOR_NATS_" name a family.
      const names = /(?<![A-Z0-9_])MEZO_(?:COORDINATOR|AGENT|SIMULATE|TRAIN)_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])/g;
      for (const m of readFileSync(file, 'utf8').matchAll(names)) named.add(m[0]);
    }
    expect(named.size).toBeGreaterThan(20);
    const derived = new Set(commands.flatMap(([, options]) => Object.keys(options.env)));
    expect([...named].filter((n) => !derived.has(n))).toEqual([]);
    // The two agent names older than the derivation are kept as they were.
    expect(agentOptions.env.MEZO_AGENT_ID).toEqual({ path: 'agentId', type: 'string' });
    expect(agentOptions.env.MEZO_AGENT_INDEX).toEqual({ path: 'agentIndex', type: 'number' });
  });

  it('layers defaults < file < MEZO_* < flags for numbers, text, switches and nested keys', () => {
    const file = configFile('coordinator.json', { job: { rounds: 5, strategy: { seedMode: 'shared', schedule: { lr: 0.5 } } }, snapshotEvery: 3 });
    const env = { MEZO_COORDINATOR_ROUNDS: '6', MEZO_COORDINATOR_SEED_MODE: 'pool', MEZO_COORDINATOR_SNAPSHOT_EVERY: '4' };
    const resolve = (flags: Record<string, unknown>, e: NodeJS.ProcessEnv = {}) => coordinatorOptions.resolve(flags, e);
    expect(resolve({}).job).toMatchObject({ rounds: 100, strategy: { seedMode: 'distinct' } });
    expect(resolve({ config: file })).toMatchObject({ snapshotEvery: 3, job: { rounds: 5, strategy: { seedMode: 'shared', schedule: { lr: 0.5 } } } });
    expect(resolve({ config: file }, env)).toMatchObject({ snapshotEvery: 4, job: { rounds: 6, strategy: { seedMode: 'pool', schedule: { lr: 0.5 } } } });
    expect(resolve({ config: file, rounds: 7, seedMode: 'distinct', lr: 0.25 }, env)).toMatchObject({
      snapshotEvery: 4,
      job: { rounds: 7, strategy: { seedMode: 'distinct', schedule: { lr: 0.25 } } },
    });

    // Switches: a variable turns one on, and --no-worker beats a file or variable that leaves the worker on.
    const agentFile = configFile('agent.json', { keepWaiting: false, worker: true });
    expect(agentOptions.resolve({ agentId: 'a', config: agentFile }, { MEZO_AGENT_KEEP_WAITING: 'true' }).keepWaiting).toBe(true);
    expect(agentOptions.resolve({ agentId: 'a', config: agentFile, worker: true }, { MEZO_AGENT_WORKER: 'false' }).worker).toBe(false);
    expect(agentOptions.resolve({ agentId: 'a', config: agentFile, worker: false }, { MEZO_AGENT_WORKER: 'true' }).worker).toBe(false);
    expect(agentOptions.resolve({ agentId: 'a', config: agentFile, worker: true }, {}).worker).toBe(true);

    // A variable the command did not have before (derived from the flag) takes its place in the layers.
    const sim = configFile('simulate.json', { dp: { clip: 1, noiseMultiplier: 0.5 }, faults: { dropout: 0.1 } });
    expect(simulateOptions.resolve({ config: sim }, { MEZO_SIMULATE_DP_CLIP: '2', MEZO_SIMULATE_DROPOUT: '0.2' })).toMatchObject({
      dp: { clip: 2, noiseMultiplier: 0.5 },
      faults: { dropout: 0.2 },
    });
    expect(simulateOptions.resolve({ config: sim, dropout: 0.3 }, { MEZO_SIMULATE_DROPOUT: '0.2' }).faults.dropout).toBe(0.3);
    const train = configFile('train.json', { train: { steps: 10, perturbations: 4 } });
    expect(trainOptions.resolve({ config: train, perturbations: 8 }, { MEZO_TRAIN_STEPS: '20', MEZO_TRAIN_PERTURBATIONS: '6' }).train).toMatchObject({
      steps: 20,
      perturbations: 8,
    });
  });

  it('reads a variable as its flag does and names the field and the layer in errors', () => {
    expect(coordinatorOptions.resolve({}, { MEZO_COORDINATOR_MIN_MEMORY: '2KiB' }).job.strategy.minMemoryBytes).toBe(2048);
    expect(() => coordinatorOptions.resolve({}, { MEZO_COORDINATOR_MIN_MEMORY: 'lots' })).toThrow(/MEZO_COORDINATOR_MIN_MEMORY/);
    expect(() => coordinatorOptions.resolve({}, { MEZO_COORDINATOR_ROUNDS: '-1' })).toThrow(/job\.rounds: .*\(from MEZO_COORDINATOR_ROUNDS\)/);
    expect(() => coordinatorOptions.resolve({}, { MEZO_COORDINATOR_ROUNDS: 'ten' })).toThrow(/MEZO_COORDINATOR_ROUNDS must be a number/);
    expect(() => coordinatorOptions.resolve({ rounds: -1 }, { MEZO_COORDINATOR_ROUNDS: '6' })).toThrow(/job\.rounds: .*\(from --rounds\)/);
    expect(() => simulateOptions.resolve({ worker: false, replicas: 0 }, {})).toThrow(/replicas: .*\(from --replicas\)/);
    // Pattern lists split at commas outside a glob's braces; scales are PATTERN=FACTOR items.
    expect(simulateOptions.resolve({}, { MEZO_SIMULATE_TRAINABLE: 'fc0.*, fc{1,2}.bias', MEZO_SIMULATE_TENSOR_SCALE: 'fc1.*=0.5' })).toMatchObject({
      trainable: ['fc0.*', 'fc{1,2}.bias'],
      tensorScales: [{ pattern: 'fc1.*', factor: 0.5 }],
    });
    expect(() => simulateOptions.resolve({}, { MEZO_SIMULATE_TENSOR_SCALE: 'fc1.*' })).toThrow(/MEZO_SIMULATE_TENSOR_SCALE.*PATTERN=FACTOR|PATTERN=FACTOR.*MEZO_SIMULATE_TENSOR_SCALE/);
    const file = configFile('bad.json', { job: { strategy: { seedMode: 'every' } } });
    expect(() => coordinatorOptions.resolve({ config: file }, {})).toThrow(new RegExp(`job\\.strategy\\.seedMode: .*\\(from ${file.replace(/[.]/g, '\\.')}\\)`));
    expect(() => agentOptions.resolve({ agentId: 'a' }, { MEZO_AGENT_WORKER: 'perhaps' })).toThrow(/MEZO_AGENT_WORKER must be true or false/);
  });

  it("states in --help the schema's own defaults where the help names one", () => {
    // train's schedule kind is 'constant' in the trainer's schema; the command's preprocess makes it cosine.
    const setElsewhere = new Set(['train --schedule']);
    let compared = 0;
    for (const [name, options] of commands) {
      for (const o of options.options) {
        const stated = /\(default:? ([^;,)]+)/.exec(o.help)?.[1]?.trim();
        const own = o.key === undefined ? undefined : defaultAt(options.schema, o.key);
        // Only a plain value in the help ("(default 4)", "(default grpc)"), against a plain default in the schema.
        if (stated === undefined || own === undefined || /\s/.test(stated) || ['off', 'none', 'never'].includes(stated)) continue;
        if (typeof own.value === 'object' || setElsewhere.has(`${name} ${o.flag}`)) continue;
        const fraction = /^(\d+)\/(\d+)$/.exec(stated);
        const value = fraction ? Number(fraction[1]) / Number(fraction[2]) : /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/i.test(stated) ? Number(stated) : stated;
        expect(value, `mezo ${name} ${o.flag}: help says (default ${stated})`).toEqual(own.value);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(25);
  });

  it('refuses a declaration the schema cannot back', () => {
    const schema = z.strictObject({ steps: z.number().default(1), nested: z.strictObject({ on: z.boolean().default(false) }).prefault({}) });
    expect(() => defineCommandOptions(schema, 'MEZO_T', { stpes: { key: 'stpes', help: '' } })).toThrow(/--stpes: the schema has no key stpes/);
    expect(() => defineCommandOptions(schema, 'MEZO_T', { steps: { key: 'steps', help: '' }, count: { key: 'steps', help: '' } })).toThrow(
      /--count and --steps both set steps/,
    );
    expect(() => defineCommandOptions(schema, 'MEZO_T', { verbose: { help: '' } })).toThrow(/--verbose needs a config key/);
    expect(() => defineCommandOptions(schema, 'MEZO_T', { steps: { key: 'steps', negate: true, help: '' } })).toThrow(/needs a boolean key/);
    const ok = defineCommandOptions(schema, 'MEZO_T', { steps: { key: 'steps', help: '' }, on: { key: 'nested.on', help: '' } });
    expect(ok.env).toEqual({ MEZO_T_STEPS: { path: 'steps', type: 'number' }, MEZO_T_ON: { path: 'nested.on', type: 'boolean' } });
    expect(ok.options.map((o) => o.flags)).toEqual(['--steps <n>', '--on']);
  });
});
