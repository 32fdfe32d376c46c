/**
 * The library entry points refuse what they cannot run with, naming the field, before anything starts:
 * createCoordinator (coordinator/create-coordinator.ts) and startAgent (edge-agent/start-agent.ts). A handle's
 * waitForEnd() before start() is an error, not a wait that never ends. (The embedding example, run by
 * test/e2e/embedding.test.ts, drives both through a whole job.)
 */
import { describe, expect, it } from 'vitest';
import { createCoordinator, type CreateCoordinatorOptions } from '../../../coordinator/index.js';
import { startAgent, type StartAgentOptions } from '../../../edge-agent/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { loadDefaultModel } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';

describe('createCoordinator', () => {
  it('names the missing or wrong option', () => {
    expect(() => createCoordinator(undefined as unknown as CreateCoordinatorOptions)).toThrow('createCoordinator: options must be an object');
    expect(() => createCoordinator({} as CreateCoordinatorOptions)).toThrow('createCoordinator: options.log must be an UpdateLog');
    const log = UpdateLog.inMemory({ jobId: 'lib', baseSha256: '00'.repeat(32), distribution: 'gaussian', decayRanges: [] });
    const base = { log, baseSlab: new Float32Array(4), engine: noise, transport: new InMemoryTransport(), options: { jobId: 'lib' } };
    expect(() => createCoordinator({ ...base, baseSlab: [0, 0] as unknown as Float32Array })).toThrow('options.baseSlab must be a Float32Array');
    expect(() => createCoordinator({ ...base, transport: {} as never })).toThrow('options.transport must be a Transport');
    expect(() => createCoordinator({ ...base, metrics: 'yes' as never })).toThrow('options.metrics must be a boolean');
  });

  it('builds a handle whose waitForEnd() before start() fails, and whose health starts NOT_SERVING', async () => {
    const prepared = await loadDefaultModel();
    const log = UpdateLog.inMemory({ jobId: 'lib', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian', decayRanges: [] });
    const handle = createCoordinator({ log, baseSlab: prepared.slab, engine: noise, transport: new InMemoryTransport(), options: { jobId: 'lib', rounds: 1 } });
    expect(handle.health.status).toBe('NOT_SERVING');
    expect(handle.address).toBeUndefined();
    await expect(handle.waitForEnd()).rejects.toThrow('waitForEnd() before start()');
    expect(await handle.metrics!.registry.metrics()).toMatch(/^mezo_rounds_total 0$/m);
    await handle.close();
  });
});

describe('startAgent', () => {
  it('names the missing or wrong option', () => {
    expect(() => startAgent(null as unknown as StartAgentOptions)).toThrow('startAgent: options must be an object');
    expect(() => startAgent({} as StartAgentOptions)).toThrow('startAgent: options.agentId must be a non-empty string');
    expect(() => startAgent({ agentId: 'a' } as StartAgentOptions)).toThrow('startAgent: options.transport must be a Transport');
    expect(() => startAgent({ agentId: 'a', transport: new InMemoryTransport() } as unknown as StartAgentOptions)).toThrow('options.createBackend must be a function');
  });

  it("starts at once, and its handle reports the agent's health until and after it is stopped", async () => {
    const prepared = await loadDefaultModel();
    // No coordinator listens on this transport: the agent keeps trying to join until stopped.
    const handle = startAgent({
      agentId: 'a',
      transport: new InMemoryTransport(),
      prepared,
      createBackend: () => Promise.reject(new Error('no job to build a backend for')),
      data: () => {
        throw new Error('no task to read data for');
      },
      reconnect: { initialMs: 10, maxMs: 10 },
    });
    expect(handle.health).toEqual({ alive: true, ready: false, reason: 'connecting to the coordinator' });
    expect(handle.health).toEqual(handle.agent.health);
    handle.stop();
    await handle.waitForEnd();
    expect(handle.exit).toEqual({ reason: 'stopped' });
    expect(handle.health).toEqual({ alive: false, ready: false, reason: 'ended: stopped' });
    await handle.close();
  });
});
