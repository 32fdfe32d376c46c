import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../../cli/agent-command.js';
import { resolveCoordinatorConfig } from '../../../cli/coordinator-command.js';
import { natsTransportOptions } from '../../../cli/nats-options.js';

describe('NATS options of mezo coordinator and mezo agent', () => {
  it('layers defaults < file < MEZO_* env < flags and defaults to gRPC with a file log', () => {
    expect(resolveCoordinatorConfig({}, {})).toMatchObject({ transport: 'grpc', logStore: 'file', nats: { url: 'nats://127.0.0.1:4222', subjectPrefix: 'mezo', replicas: 1 } });
    const env = { MEZO_COORDINATOR_TRANSPORT: 'nats', MEZO_COORDINATOR_NATS_URL: 'nats://a:4222,nats://b:4222', MEZO_COORDINATOR_LOG_STORE: 'jetstream', MEZO_COORDINATOR_NATS_USER: 'coord', MEZO_COORDINATOR_NATS_PASS: 'pw' };
    const config = resolveCoordinatorConfig({ natsReplicas: 3 }, env);
    expect(config).toMatchObject({ transport: 'nats', logStore: 'jetstream', nats: { url: 'nats://a:4222,nats://b:4222', user: 'coord', pass: 'pw', replicas: 3 } });
    expect(natsTransportOptions(config.nats)).toEqual({ servers: ['nats://a:4222', 'nats://b:4222'], auth: { user: 'coord', pass: 'pw' } });
    const agent = resolveAgentConfig({ agentId: 'a1', transport: 'nats', natsNkeySeedFile: 'seed.nk', natsTlsCa: 'ca.pem', jobId: 'job-7' }, { MEZO_AGENT_NATS_URL: 'nats://x:1' });
    expect(agent).toMatchObject({ transport: 'nats', jobId: 'job-7', natsReadLog: false, nats: { url: 'nats://x:1', nkeySeedFile: 'seed.nk', tlsCa: 'ca.pem' } });
    expect(natsTransportOptions(agent.nats)).toEqual({ servers: ['nats://x:1'], auth: { nkeySeedFile: 'seed.nk' }, tls: { ca: 'ca.pem', cert: undefined, key: undefined } });
  });

  it('refuses inconsistent NATS settings, naming the flag', () => {
    expect(() => resolveCoordinatorConfig({ logStore: 'jetstream' }, {})).toThrow(/logStore: --log-store jetstream needs --transport nats \(from --log-store\)/);
    expect(() => resolveCoordinatorConfig({ transport: 'nats', natsUser: 'u' }, {})).toThrow(/nats\.pass: --nats-user and --nats-pass go together/);
    expect(() => resolveAgentConfig({ agentId: 'a', transport: 'nats', natsToken: 't', natsNkeySeedFile: 'f' }, {})).toThrow(/use one of/);
    expect(() => resolveAgentConfig({ agentId: 'a', transport: 'kafka' }, {})).toThrow(/transport/);
  });
});
