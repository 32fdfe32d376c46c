import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { RunMonitor } from '../../../coordinator/run-monitor.js';
import { serveDashboard, type DashboardServer } from '../../../coordinator/dashboard/server.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { scriptedAgent, scriptedCoordinator } from '../dashboard/scripted-fleet.js';

interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

/** Parses the Prometheus text exposition format into metric families. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const help = new Map<string, string>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name, ...rest] = line.slice(7).split(' ');
      help.set(name!, rest.join(' '));
    } else if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      current = { name: name!, type: type!, help: help.get(name!), samples: [] };
      families.set(name!, current);
    } else if (line && !line.startsWith('#')) {
      const match = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match || !current) throw new Error(`unparseable sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const at = pair.indexOf('=');
        labels[pair.slice(0, at)] = pair.slice(at + 2, -1);
      }
      current.samples.push({ name: match[1]!, labels, value: Number(match[3]) });
    }
  }
  return families;
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined =>
  families.get(name)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('metrics a scrape returns follow Prometheus conventions', () => {
  let coordinator: Coordinator;
  let monitor: RunMonitor;
  let server: DashboardServer;
  let families: Map<string, Family>;

  beforeAll(async () => {
    const transport = new InMemoryTransport();
    coordinator = scriptedCoordinator(transport, { rounds: 3, strategy: { agentsPerRound: 2, seedMode: 'shared' } });
    const metrics = new CoordinatorMetrics(coordinator);
    monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0 });
    server = await serveDashboard({ metrics, monitor, port: 0, token: 't' });
    await coordinator.listen();
    await scriptedAgent(transport, 'a1', 1);
    await scriptedAgent(transport, 'a2', 1);
    await coordinator.run();
    monitor.recordEvaluation(2, { accuracy: 0.8, loss: 0.5 });
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer t' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    families = parseExposition(await response.text());
  });
  afterAll(async () => {
    monitor.finish();
    await server.close();
    await coordinator.close();
  });

  it('names, labels, help, _total only on counters, base units', () => {
    expect(families.size).toBeGreaterThan(20);
    for (const family of families.values()) {
      const { name, type } = family;
      expect(name, name).toMatch(/^mezo_[a-z0-9_]*[a-z0-9]$/);
      expect(name, name).not.toMatch(/__/);
      expect(family.help, `${name} has HELP`).toBeTruthy();
      expect(['counter', 'gauge', 'histogram', 'summary'], name).toContain(type);
      if (type === 'counter') expect(name, `${name} is a counter`).toMatch(/_total$/);
      else expect(name, `${name} is a ${type}`).not.toMatch(/_total$/);
      // Base units only: seconds and bytes, no prefixed or derived ones.
      expect(name, name).not.toMatch(/_(ms|us|ns|milliseconds|microseconds|minutes|hours|days|kb|mb|gb|kib|mib|gib|kilobytes|megabytes|percent)(_|$)/);
      if (/(duration|latency|_time_|_time$|elapsed)/.test(name)) expect(name, `${name} is a time`).toMatch(/_seconds(_total)?$/);
      if (/bytes/.test(name)) expect(name, `${name} counts bytes`).toMatch(/_bytes(_total)?$/);
      if (/(accuracy|agreement)/.test(name)) expect(name, `${name} is a fraction`).toMatch(/_ratio$/);
      for (const sample of family.samples) {
        for (const label of Object.keys(sample.labels)) expect(label, `${name} label`).toMatch(/^[a-z_][a-z0-9_]*$/);
        if (type === 'histogram') expect(sample.name, name).toMatch(new RegExp(`^${name}_(bucket|sum|count)$`));
        else expect(sample.name, name).toBe(name);
        if (name.endsWith('_ratio')) expect(sample.value, name).toBeGreaterThanOrEqual(0);
        if (name.endsWith('_ratio')) expect(sample.value, name).toBeLessThanOrEqual(1);
      }
    }
  });

  it('covers rounds, latency, results, agents, bytes, log version, replay lag, agreement and evaluation', () => {
    const types: Record<string, string> = {
      mezo_rounds_total: 'counter',
      mezo_round_duration_seconds: 'histogram',
      mezo_results_accepted_total: 'counter',
      mezo_results_rejected_total: 'counter',
      mezo_results_late_total: 'counter',
      mezo_tasks_dropped_total: 'counter',
      mezo_agents_connected: 'gauge',
      mezo_round_agents_asked: 'gauge',
      mezo_round_results: 'gauge',
      mezo_round_agents_dropped: 'gauge',
      mezo_transport_received_bytes_total: 'counter',
      mezo_transport_sent_bytes_total: 'counter',
      mezo_log_version: 'gauge',
      mezo_agents_replay_lag_versions: 'gauge',
      mezo_replicas_divergent: 'gauge',
      mezo_round_sign_agreement_ratio: 'gauge',
      mezo_eval_accuracy_ratio: 'gauge',
      mezo_eval_loss: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) expect(families.get(name)?.type, name).toBe(type);
    expect(value(families, 'mezo_rounds_total')).toBe(3);
    expect(value(families, 'mezo_log_version')).toBe(3);
    expect(value(families, 'mezo_agents_connected')).toBe(2);
    expect(value(families, 'mezo_round_agents_asked')).toBe(2);
    expect(value(families, 'mezo_round_results')).toBe(2);
    expect(value(families, 'mezo_round_sign_agreement_ratio')).toBe(1);
    expect(value(families, 'mezo_eval_accuracy_ratio')).toBe(0.8);
    expect(value(families, 'mezo_transport_received_bytes_total')).toBeGreaterThan(0);
    expect(value(families, 'mezo_transport_sent_bytes_total')).toBeGreaterThan(0);
    const traffic = [...coordinator.traffic().values()];
    expect(value(families, 'mezo_transport_sent_bytes_total')).toBeLessThanOrEqual(traffic.reduce((n, t) => n + t.bytesDown, 0));
    // The scripted agents never heartbeat past version 0, but answering round 2's task at version 2 shows they
    // held it: at the head (3) their lag is 1.
    expect(value(families, 'mezo_agents_replay_lag_versions', { quantile: '1' })).toBe(1);
    expect(value(families, 'mezo_agents_replay_lag_versions', { quantile: '0.5' })).toBe(1);
  });
});
