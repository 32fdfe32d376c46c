import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, resolveConfig } from '../../../shared/config/index.js';

const schema = z.strictObject({
  steps: z.number().int().positive().default(100),
  name: z.string().default('job'),
  schedule: z.strictObject({ lr: z.number().positive().default(1e-3), kind: z.enum(['constant', 'cosine']).default('constant') }).default({ lr: 1e-3, kind: 'constant' }),
  verbose: z.boolean().default(false),
});
const envBindings = {
  MEZO_STEPS: { path: 'steps', type: 'number' as const },
  MEZO_LR: { path: 'schedule.lr', type: 'number' as const },
  MEZO_VERBOSE: { path: 'verbose', type: 'boolean' as const },
};
const dir = mkdtempSync(join(tmpdir(), 'mezo-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('layered config', () => {
  it('applies defaults < file < env < flags', () => {
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify({ steps: 5, name: 'from-file', schedule: { lr: 0.5, kind: 'cosine' } }));
    expect(resolveConfig(schema, {})).toEqual({ steps: 100, name: 'job', schedule: { lr: 1e-3, kind: 'constant' }, verbose: false });
    expect(resolveConfig(schema, { file })).toMatchObject({ steps: 5, name: 'from-file', schedule: { lr: 0.5, kind: 'cosine' } });
    const env = { MEZO_STEPS: '7', MEZO_LR: '0.25', MEZO_VERBOSE: 'yes' };
    expect(resolveConfig(schema, { file, env, envBindings })).toEqual({
      steps: 7,
      name: 'from-file',
      schedule: { lr: 0.25, kind: 'cosine' },
      verbose: true,
    });
    expect(resolveConfig(schema, { file, env, envBindings, flags: { steps: 9, 'schedule.lr': undefined } })).toMatchObject({
      steps: 9,
      schedule: { lr: 0.25, kind: 'cosine' },
    });
  });

  it('names the field and the layer a bad value came from', () => {
    const file = join(dir, 'b.json');
    writeFileSync(file, JSON.stringify({ schedule: { lr: -1 } }));
    expect(() => resolveConfig(schema, { file })).toThrow(new RegExp(`config: schedule\\.lr: .* \\(from ${file.replace(/[.]/g, '\\.')}\\)`));
    expect(() => resolveConfig(schema, { env: { MEZO_STEPS: '0' }, envBindings })).toThrow(/config: steps: .*\(from MEZO_STEPS\)/);
    expect(() => resolveConfig(schema, { env: { MEZO_STEPS: 'ten' }, envBindings })).toThrow(/MEZO_STEPS must be a number, got "ten"/);
    expect(() => resolveConfig(schema, { env: { MEZO_VERBOSE: 'maybe' }, envBindings })).toThrow(/MEZO_VERBOSE must be true or false/);
    expect(() => resolveConfig(schema, { flags: { 'schedule.lr': 0 }, flagNames: { 'schedule.lr': '--lr' } })).toThrow(/schedule\.lr: .*\(from --lr\)/);
    expect(() => resolveConfig(schema, { flags: { stpes: 3 } })).toThrow(ConfigError);
  });

  it('reports a missing or malformed file', () => {
    expect(() => resolveConfig(schema, { file: join(dir, 'missing.json') })).toThrow(/missing\.json: file not found/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ steps: ');
    expect(() => resolveConfig(schema, { file: bad })).toThrow(/bad\.json/);
    writeFileSync(bad, '[1, 2]');
    expect(() => resolveConfig(schema, { file: bad })).toThrow(/must hold a JSON object/);
  });
});
