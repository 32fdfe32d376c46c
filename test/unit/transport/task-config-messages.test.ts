/**
 * Task.config (a Strategy's per-task settings, Strategy.configureTask) on the wire: strings, numbers and booleans
 * survive protobuf unchanged, bad configs are refused naming the field, and a task without one keeps its bytes
 * and decodes to no config (so peers that predate the field interoperate).
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_TASK_CONFIG_KEYS,
  MAX_TASK_CONFIG_STRING,
  decodeCoordinatorMessage,
  encodeCoordinatorMessage,
  getCodecs,
  type CoordinatorMessage,
  type Task,
} from '../../../shared/transport/index.js';
import { fieldOf } from '../../helpers/validation-field.js';

const task: Task = { jobId: 'job', round: 3, attempt: 1, version: 3, seeds: [5n, (1n << 64n) - 1n], epsilon: 1e-3, batchSize: 8, deadlineMs: 100 };

const overBytes = (m: CoordinatorMessage): CoordinatorMessage => getCodecs().coordinatorMessage.decode(getCodecs().coordinatorMessage.encode(m));
/** Decodes a hand-made wire task (as proto-loader would hand it over). */
const decodeWire = (wireTask: Record<string, unknown>) => decodeCoordinatorMessage({ task: wireTask, body: 'task', update: null, ping: null });
const wireTask = () => encodeCoordinatorMessage({ kind: 'task', task }).task as Record<string, unknown>;

describe('Task.config on the wire', () => {
  it('carries strings, numbers and booleans through protobuf bytes unchanged', () => {
    const config = { lr: 0.25, temperature: -1.5e-7, layers: 12, zero: 0, tag: 'warm-up ✓', empty: '', freeze: true, mask: false, 'a.b_c-d': 'x'.repeat(MAX_TASK_CONFIG_STRING) };
    const decoded = overBytes({ kind: 'task', task: { ...task, config } });
    expect(decoded).toEqual({ kind: 'task', task: { ...task, config } });
    if (decoded.kind !== 'task') throw new Error('not a task');
    // Each value keeps its type: a number is not read back as a string, nor false as absent.
    expect(typeof decoded.task.config!['layers']).toBe('number');
    expect(decoded.task.config!['mask']).toBe(false);
    expect(decoded.task.config!['zero']).toBe(0);
    expect(Object.keys(decoded.task.config!).sort()).toEqual(Object.keys(config).sort());
  });

  it('leaves a task without config (or with an empty one) as it was: no field on the wire, no config decoded', () => {
    const plain = getCodecs().coordinatorMessage.encode({ kind: 'task', task });
    expect(getCodecs().coordinatorMessage.encode({ kind: 'task', task: { ...task, config: {} } }).equals(plain)).toBe(true);
    expect(getCodecs().coordinatorMessage.encode({ kind: 'task', task: { ...task, config: { k: 1 } } }).length).toBeGreaterThan(plain.length);
    expect(wireTask()).not.toHaveProperty('config');
    const decoded = getCodecs().coordinatorMessage.decode(plain);
    expect(decoded.kind === 'task' && 'config' in decoded.task ? decoded.task.config : undefined).toBeUndefined();
    // A peer that predates the field hands over no config at all, or (proto-loader's default) an empty map.
    for (const config of [undefined, null, {}]) {
      const m = decodeWire({ ...wireTask(), config });
      expect(m.kind === 'task' && m.task.config).toBeFalsy();
    }
  });

  it('refuses a bad config, naming the field', () => {
    const withConfig = (config: unknown) => fieldOf(() => decodeWire({ ...wireTask(), config }));
    expect(withConfig({ lr: { numberValue: Number.NaN, value: 'numberValue' } })).toBe('task.config.lr.numberValue');
    expect(withConfig({ lr: { numberValue: Number.POSITIVE_INFINITY } })).toBe('task.config.lr.numberValue');
    expect(withConfig({ tag: { stringValue: 'x'.repeat(MAX_TASK_CONFIG_STRING + 1) } })).toBe('task.config.tag');
    // A ConfigValue must set exactly one member.
    expect(withConfig({ none: {} })).toBe('task.config.none');
    expect(withConfig({ two: { stringValue: 'a', boolValue: true } })).toBe('task.config.two');
    expect(withConfig({ odd: { numberValue: 'NaN' } })).toBe('task.config.odd.numberValue');
    // Keys: a letter first, then up to 63 of A-Z a-z 0-9 _ . -
    expect(withConfig({ '1st': { boolValue: true } })).toBe('task.config.1st');
    expect(withConfig({ 'has space': { boolValue: true } })).toBe('task.config.has space');
    expect(withConfig({ ['k'.repeat(65)]: { boolValue: true } })).toBe(`task.config.${'k'.repeat(65)}`);
    expect(() => decodeWire({ ...wireTask(), config: { ['k'.repeat(64)]: { boolValue: true } } })).not.toThrow();
    // Too many keys names the map itself.
    const many = Object.fromEntries(Array.from({ length: MAX_TASK_CONFIG_KEYS + 1 }, (_, i) => [`k${i}`, { numberValue: i }]));
    expect(withConfig(many)).toBe('task.config');
    const most = Object.fromEntries(Array.from({ length: MAX_TASK_CONFIG_KEYS }, (_, i) => [`k${i}`, { numberValue: i }]));
    const decoded = decodeWire({ ...wireTask(), config: most });
    expect(decoded.kind === 'task' && Object.keys(decoded.task.config!)).toHaveLength(MAX_TASK_CONFIG_KEYS);
  });

  it('refuses on receipt what a careless sender encodes: the check does not rely on the sender', () => {
    const bytes = getCodecs().coordinatorMessage.encode({ kind: 'task', task: { ...task, config: { lr: Number.NaN } } });
    expect(fieldOf(() => getCodecs().coordinatorMessage.decode(bytes))).toBe('task.config.lr.numberValue');
  });
});

