/**
 * The agent's smaller rooms on their own: the catch-up choice (catch-up.ts), the reconnect backoff
 * (connection.ts) and the batch cursor (batch-cursor.ts), whose position must survive data that is dropped and
 * rebuilt between tasks (a simulation's lazily built shares).
 */
import { describe, expect, it } from 'vitest';
import { BatchCursor } from '../../../edge-agent/batch-cursor.js';
import { chooseCatchUp } from '../../../edge-agent/catch-up.js';
import { backoffDelay } from '../../../edge-agent/connection.js';
import { LocalDataset } from '../../../shared/data/index.js';
import type { JoinAccepted } from '../../../shared/transport/index.js';
import { joinAcceptedFixture } from '../../helpers/join-accepted.js';

const joinAccepted = (offer: Partial<JoinAccepted>): JoinAccepted => ({ ...joinAcceptedFixture('rooms', 'a'.repeat(64)), ...offer });

describe('chooseCatchUp', () => {
  it('takes the snapshot only when it moves strictly fewer bytes, or when the log no longer reaches back', () => {
    const offer = { currentVersion: 100, snapshotVersion: 90, logFloor: 0, logBytes: 1000, snapshotBytes: 600, logBytesAfterSnapshot: 300 };
    expect(chooseCatchUp(10, joinAccepted(offer))).toBe('snapshot');
    expect(chooseCatchUp(10, joinAccepted({ ...offer, logBytesAfterSnapshot: 400 }))).toBe('log'); // a tie goes to the log
    expect(chooseCatchUp(95, joinAccepted(offer))).toBe('log'); // no snapshot newer than the version held
    expect(chooseCatchUp(100, joinAccepted(offer))).toBe('log'); // at the head
    expect(chooseCatchUp(10, joinAccepted({ ...offer, snapshotBytes: 5000, logFloor: 50 }))).toBe('snapshot'); // log starts above 10
  });
});

describe('backoffDelay', () => {
  it('doubles from the first delay up to the cap, scaled into [0.5, 1) of it', () => {
    for (let failures = 0; failures < 40; failures++) {
      const full = Math.min(10_000, 200 * 2 ** failures);
      for (let draw = 0; draw < 20; draw++) {
        const delay = backoffDelay(failures, undefined);
        expect(delay).toBeGreaterThanOrEqual(full / 2);
        expect(delay).toBeLessThan(full);
      }
    }
    const custom = backoffDelay(3, { initialMs: 10, maxMs: 50 });
    expect(custom).toBeGreaterThanOrEqual(25);
    expect(custom).toBeLessThan(50);
  });
});

describe('BatchCursor', () => {
  const examples = 10;
  const make = () =>
    new LocalDataset({
      features: Float32Array.from({ length: examples * 2 }, (_, i) => i),
      labels: Int32Array.from({ length: examples }, (_, i) => i % 3),
      featureShape: [2],
      numClasses: 3,
    });
  const firstFeatures = (cursor: BatchCursor, size: number, count: number): number[] =>
    Array.from({ length: count }, () => cursor.next(size).features[0] as number);

  it('walks the same seeded order whether the data is held or rebuilt for every batch, across epochs', () => {
    const held = firstFeatures(new BatchCursor(make(), 7), 4, 9);
    let builds = 0;
    const rebuilt = firstFeatures(new BatchCursor(() => (builds++, make()), 7), 4, 9);
    expect(rebuilt).toEqual(held);
    expect(builds).toBe(9);
    // Batches of 4 from 10 examples, dropping the last partial one: two per epoch, then a new order.
    expect(new Set(held.slice(0, 2)).size).toBe(2);
    expect(firstFeatures(new BatchCursor(make(), 8), 4, 9)).not.toEqual(held);
  });

  it('starts over on reset and on a new batch size', () => {
    const cursor = new BatchCursor(make(), 3);
    const first = firstFeatures(cursor, 4, 3);
    cursor.reset();
    expect(firstFeatures(cursor, 4, 3)).toEqual(first);
    expect(cursor.next(2).size).toBe(2);
  });
});
