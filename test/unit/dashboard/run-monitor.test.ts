import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator, RoundReport } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { RunMonitor, histogram, signAgreement, type MonitorEvent } from '../../../coordinator/run-monitor.js';
import { RunRecordError, parseRunRecord, readRunRecord } from '../../../coordinator/run-record.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { baseSha256, scriptedAgent, scriptedCoordinator, until, type ScriptedAgent } from './scripted-fleet.js';

const ROUNDS = 4;

describe('RunMonitor on a real coordinator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-monitor-'));
  let coordinator: Coordinator;
  let monitor: RunMonitor;
  let metrics: CoordinatorMetrics;
  const events: MonitorEvent[] = [];
  const reports: RoundReport[] = [];
  let agents: ScriptedAgent[];

  beforeAll(async () => {
    const transport = new InMemoryTransport();
    coordinator = scriptedCoordinator(transport, {
      rounds: ROUNDS,
      strategy: { agentsPerRound: 3, seedMode: 'shared', seedsPerAgent: 2, schedule: { lr: 1e-3 } },
    });
    metrics = new CoordinatorMetrics(coordinator);
    monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0, config: { agents: 3, note: 'unit' } });
    monitor.subscribe((e) => events.push(e));
    // A second subscriber through the public API, and one that unsubscribes before the run.
    coordinator.onRound((r) => reports.push(r));
    const dropped = coordinator.onRound(() => {
      throw new Error('must not be called');
    });
    dropped();
    await coordinator.listen();
    agents = [await scriptedAgent(transport, 'a1', 1), await scriptedAgent(transport, 'a2', 1), await scriptedAgent(transport, 'a3', -1)];
    // a1 reports the right weights at version 0; a3 reports weights that differ from base + log.
    agents[0]!.session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: baseSha256 } });
    agents[2]!.session.send({ kind: 'heartbeat', heartbeat: { version: 0, weightsSha256: 'f'.repeat(64) } });
    await until(() => coordinator.agentStatuses().every((s) => s.id === 'a2' || s.weightsSha256 !== undefined), 5000, 'heartbeats');
    monitor.recordEvaluation(-1, { accuracy: 0.5, loss: 1.2 });
    await coordinator.run();
    monitor.recordEvaluation(ROUNDS - 1, { accuracy: 0.75, loss: 0.8 });
  });
  afterAll(async () => {
    monitor.finish();
    await coordinator.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records one row per committed round with agents, scalars, sign agreement, bytes and divergence', () => {
    const rows = monitor.roundRows();
    expect(rows.map((r) => r.round)).toEqual([0, 1, 2, 3]);
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4]);
    expect(rows.at(-1)!.hash).toBe(coordinator.log.headHash);
    for (const row of rows) {
      expect(row).toMatchObject({ attempt: 0, connected: 3, asked: 3, answered: 3, dropped: 0, late: 0, rejected: 0, lr: 1e-3, divergent: 1 });
      expect(row.trainLoss).toBeCloseTo(2, 6);
      expect(row.scalars.count).toBe(6);
      expect(row.scalars.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(6);
      expect(row.scalars.positiveFraction).toBeCloseTo(4 / 6, 12);
      // Shared seeds: two agents push up, one down; the aggregate goes up, so 4 of the 6 scalars agree.
      expect(row.signAgreement).toBeCloseTo(4 / 6, 12);
      // The agents answered this round's task at the version before it: they trail the new head by one.
      expect(row.maxReplayLag).toBe(1);
      expect(row.durationSeconds).toBeGreaterThanOrEqual(0);
    }
    // Every task and result crosses the transport, so each round moves bytes both ways.
    expect(rows.every((r) => r.bytesUp > 0 && r.bytesDown > 0)).toBe(true);
    expect(monitor.latestScalars()).toHaveLength(6);
  });

  it('extends RoundReport and calls every onRound subscriber', () => {
    expect(reports).toHaveLength(ROUNDS);
    const last = reports.at(-1)!;
    expect(last).toMatchObject({ asked: 3, results: 3, dropped: 0, connected: 3 });
    expect(last.scalars.map((s) => s.agentId).sort()).toEqual(['a1', 'a2', 'a3']);
    expect(last.terms).toHaveLength(2);
    expect(signAgreement(last)).toBeCloseTo(4 / 6, 12);
    expect([...coordinator.traffic().keys()].sort()).toEqual(['a1', 'a2', 'a3']);
  });

  it('streams round, fleet and evaluation events and reports the fleet', () => {
    expect(events.filter((e) => e.type === 'round')).toHaveLength(ROUNDS);
    expect(events.filter((e) => e.type === 'evaluation').map((e) => e.type === 'evaluation' && e.evaluation.round)).toEqual([-1, ROUNDS - 1]);
    const fleet = monitor.fleet();
    expect(fleet).toMatchObject({ version: ROUNDS, known: 3, connected: 3, headHash: coordinator.log.headHash });
    expect(fleet.divergent.map((a) => a.id)).toEqual(['a3']);
    const byId = new Map(fleet.agents.map((a) => [a.id, a]));
    expect(byId.get('a1')!.weightsMatch).toBe(true);
    expect(byId.get('a2')!.weightsMatch).toBeNull();
    expect(byId.get('a3')!.weightsMatch).toBe(false);
    expect(fleet.lag.max).toBe(1);
  });

  it('writes a run record that passes the schema, keeping traffic after the coordinator closes', async () => {
    monitor.finish();
    expect(events.at(-1)!.type).toBe('end');
    await coordinator.close();
    const path = join(dir, 'out', 'run.json');
    const written = await monitor.writeRunRecord(path);
    const record = await readRunRecord(path);
    expect(record).toEqual(written);
    expect(record).toMatchObject({ kind: 'coordinator', job: 'dash', config: { agents: 3, note: 'unit' } });
    expect(record.endedAt).not.toBeNull();
    expect(record.rounds).toHaveLength(ROUNDS);
    expect(record.summary).toMatchObject({ rounds: ROUNDS, version: ROUNDS, accuracyBefore: 0.5, accuracyAfter: 0.75, failedAttempts: 0, agents: 3 });
    expect(record.summary.bytesUp).toBeGreaterThan(0);
    expect(record.summary.bytesUpPerAgent).toBeCloseTo(record.summary.bytesUp / 3, 6);
    expect(record.agents.map((a) => a.id)).toEqual(['a1', 'a2', 'a3']);
    expect(record.agents.every((a) => a.accepted === ROUNDS)).toBe(true);
  });

  it('refuses a malformed record with an error naming the field', () => {
    const record = JSON.parse(readFileSync(join(dir, 'out', 'run.json'), 'utf8')) as { rounds: Array<Record<string, unknown>> };
    record.rounds[1]!.trainLoss = 'low';
    expect(() => parseRunRecord(record, 'run.json')).toThrow(RunRecordError);
    expect(() => parseRunRecord(record, 'run.json')).toThrow(/^run\.json: rounds\[1\]\.trainLoss: /);
    expect(() => parseRunRecord({ ...record, rounds: [], kind: 'training' }, 'x')).toThrow(/x: kind: /);
  });

  it('validates evaluations', () => {
    expect(() => monitor.recordEvaluation(-2, { accuracy: 0.5 })).toThrow(/round/);
    expect(() => monitor.recordEvaluation(1, { accuracy: 1.5 })).toThrow(/accuracy/);
  });
});

describe('histogram', () => {
  it('bins values over [min, max] and puts equal values in one bin', () => {
    expect(histogram([0, 1, 2, 3, 4], 4)).toEqual({ min: 0, max: 4, counts: [1, 1, 1, 2] });
    expect(histogram([2, 2, 2], 10)).toEqual({ min: 2, max: 2, counts: [3] });
    expect(histogram([Number.NaN], 3)).toBeNull();
  });
});
