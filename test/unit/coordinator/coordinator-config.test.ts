import { describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';

describe('mezo coordinator configuration', () => {
  it('layers flags over MEZO_COORDINATOR_* over defaults, including the metrics endpoint', () => {
    const env = { MEZO_COORDINATOR_METRICS_LISTEN: '127.0.0.1:9464', MEZO_COORDINATOR_ROUNDS: '7' };
    const config = resolveCoordinatorConfig({ metricsToken: 'ops' }, env);
    expect(config).toMatchObject({ metricsListen: '127.0.0.1:9464', metricsToken: 'ops', job: { rounds: 7 } });
    expect(resolveCoordinatorConfig({}, {}).metricsListen).toBeUndefined();
    expect(resolveCoordinatorConfig({ metricsListen: ':9464' }, env).metricsListen).toBe(':9464');
  });

  it('names the field and its source for a bad metrics address or TLS half-pair', () => {
    expect(() => resolveCoordinatorConfig({ metricsListen: 'localhost' }, {})).toThrow(/config: metricsListen: must be host:port \(from --metrics-listen\)/);
    expect(() => resolveCoordinatorConfig({}, { MEZO_COORDINATOR_METRICS_LISTEN: 'a:b' })).toThrow(/metricsListen.*\(from MEZO_COORDINATOR_METRICS_LISTEN\)/);
    expect(() => resolveCoordinatorConfig({ tlsCert: 'c.pem' }, {})).toThrow(/tlsKey: --tls-cert and --tls-key go together/);
  });
});
