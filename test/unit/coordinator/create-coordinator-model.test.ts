/**
 * createCoordinator's wiring that `mezo coordinator` and `mezo simulate` share: a prepared model in place of the
 * base slab (padding and, for a 'lowrank' log, the low-rank layout derived from it), and listen() before run(),
 * so a caller can let a fleet join before round 0.
 */
import { describe, expect, it } from 'vitest';
import { createCoordinator } from '../../../coordinator/index.js';
import { UpdateLog } from '../../../shared/log/index.js';
import { loadDefaultModel } from '../../../shared/model/index.js';
import { noise } from '../../../shared/noise/index.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';

describe('createCoordinator with a prepared model', () => {
  it('names a model given with a base slab, or a model that is not one', async () => {
    const prepared = await loadDefaultModel();
    const log = UpdateLog.inMemory({ jobId: 'lib', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian', decayRanges: [] });
    const base = { log, engine: noise, transport: new InMemoryTransport(), options: { jobId: 'lib' } };
    expect(() => createCoordinator({ ...base, model: prepared, baseSlab: prepared.slab })).toThrow('give options.model or options.baseSlab, not both');
    expect(() => createCoordinator({ ...base, model: { ...prepared, slab: [0] as unknown as Float32Array } })).toThrow('options.model.slab must be a Float32Array');
    expect(() => createCoordinator({ ...base, model: { slab: prepared.slab, manifest: {} as never } })).toThrow('options.model.manifest.tensors');
    expect(() => createCoordinator(base)).toThrow('options.baseSlab must be a Float32Array');
  });

  it("derives the low-rank layout a 'lowrank' log replays with, which a bare base slab lacks", async () => {
    const prepared = await loadDefaultModel();
    const header = { jobId: 'lib', baseSha256: prepared.manifest.slabSha256, distribution: 'lowrank' as const, rank: 2, decayRanges: [] };
    const options = { jobId: 'lib', rounds: 0, distribution: 'lowrank' as const, rank: 2 };
    expect(() =>
      createCoordinator({ log: UpdateLog.inMemory(header), baseSlab: prepared.slab, engine: noise, transport: new InMemoryTransport(), options }),
    ).toThrow(/lowRank must be the model's layout at rank 2/);
    const handle = createCoordinator({ log: UpdateLog.inMemory(header), model: prepared, engine: noise, transport: new InMemoryTransport(), options });
    expect(handle.coordinator.options.distribution).toBe('lowrank');
    await handle.close();
  });

  it('listens first and runs the rounds when asked, with waitForEnd() giving the same report', async () => {
    const prepared = await loadDefaultModel();
    const log = UpdateLog.inMemory({ jobId: 'lib', baseSha256: prepared.manifest.slabSha256, distribution: 'gaussian', decayRanges: [] });
    const handle = createCoordinator({ log, model: prepared, engine: noise, transport: new InMemoryTransport(), options: { jobId: 'lib', rounds: 0 }, metrics: false });
    expect(handle.metrics).toBeUndefined();
    const address = await handle.listen();
    expect(handle.address).toBe(address);
    // Listening alone starts no round loop: there is nothing to wait for yet.
    await expect(handle.waitForEnd()).rejects.toThrow('waitForEnd() before start() or run()');
    expect(await handle.listen()).toBe(address);
    const report = await handle.run();
    expect(report).toMatchObject({ roundsRun: 0, version: 0 });
    expect(await handle.waitForEnd()).toBe(report);
    await handle.close();
  });
});
