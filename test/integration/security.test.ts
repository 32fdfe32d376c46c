/**
 * Security of the gRPC transport on loopback: TLS and mutual TLS (certificates made here with the system's
 * openssl; nothing is committed), per-agent credentials enforced on Join, Session (hence Results) and FetchLog,
 * revocation, message size limits and the per-agent rate limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GrpcTransport,
  checkHealth,
  clientTlsCredentials,
  serverTlsCredentials,
  type ClientSession,
  type CoordinatorClient,
  type CoordinatorMessage,
  type JoinRequest,
} from '../../shared/transport/index.js';
import type { Coordinator } from '../../coordinator/index.js';
import type { Agent } from '../../edge-agent/agent.js';
import { fixture, makeAgent, startCoordinator, until, codeOf, type Fixture } from './fleet-fixture.js';
import { haveOpenssl, makeTestPki } from '../helpers/test-pki.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mezo-security-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the compiled `mezo` CLI; resolves with its exit once it ends. */
function mezo(args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'mezo.js'), ...args], { cwd: ROOT, env: { ...process.env, MEZO_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stderr: () => stderr, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}
const pem = (name: string): string => join(dir, name);

const makePki = (prefix: string, clientIds: string[] = []): void => makeTestPki(dir, prefix, 'test-ca', clientIds);

const rounds = { rounds: 3, deadlineMs: 10_000, heartbeatMs: 100, batchSize: 32, strategy: { agentsPerRound: 2, seedsPerAgent: 1, schedule: { lr: 1e-3 }, seed: 3 } };

function joinRequest(f: Fixture, agentId: string, token: string): JoinRequest {
  return { agentId, token, capabilities: { memoryBytes: 0, cores: 1, noiseImpl: 'js' }, baseSha256: f.prepared.manifest.slabSha256, versionHeld: 0 };
}

/** Opens a Session and resolves with the status it ends with (OK when it ends cleanly); `onOpen` may send. */
function sessionOutcome(client: CoordinatorClient, onOpen: (session: ClientSession) => void = () => undefined, onMessage?: (m: CoordinatorMessage, s: ClientSession) => void): Promise<string> {
  return new Promise((resolve) => {
    const session: ClientSession = client.session({
      message: (m) => (m.kind === 'ping' ? session.send({ kind: 'pong', nonce: m.nonce }) : onMessage?.(m, session)),
      invalid: () => undefined,
      closed: (error) => resolve(error?.code ?? 'OK'),
    });
    onOpen(session);
  });
}

describe.skipIf(!haveOpenssl)('TLS', () => {
  let f: Fixture;
  beforeAll(async () => {
    // The client certificate names every agent the tests connect as (mutual TLS binds the id to it).
    makePki('', ['probe', 'agent-0', 'agent-1', 'cli-agent']);
    makePki('other-', ['probe']);
    makePki('bound-', ['dev-0']);
    f = await fixture();
  });

  it('serves agents over mutual TLS and refuses plaintext, unknown CAs and clients without a certificate', async () => {
    const server = new GrpcTransport({
      address: '127.0.0.1:0',
      serverCredentials: serverTlsCredentials({ cert: pem('server.crt'), key: pem('server.key'), clientCa: pem('ca.crt') }),
    });
    const coordinator = await startCoordinator(f, server, { ...rounds, jobId: 'tls-test' });
    const address = coordinator.address!;
    const trusted = (cert = 'client') =>
      new GrpcTransport({ address, callTimeoutMs: 5000, channelCredentials: clientTlsCredentials({ ca: pem('ca.crt'), cert: pem(`${cert}.crt`), key: pem(`${cert}.key`) }) });
    const attempt = (transport: GrpcTransport) => {
      const client = transport.connect({ agentId: 'probe', token: '' });
      return codeOf(client.join(joinRequest(f, 'probe', '')).finally(() => client.close()));
    };
    try {
      expect(await attempt(new GrpcTransport({ address, callTimeoutMs: 5000 }))).toBe('UNAVAILABLE'); // plaintext
      expect(await attempt(new GrpcTransport({ address, callTimeoutMs: 5000, channelCredentials: clientTlsCredentials({ ca: pem('ca.crt') }) }))).toBe('UNAVAILABLE'); // no client cert
      expect(await attempt(new GrpcTransport({ address, callTimeoutMs: 5000, channelCredentials: clientTlsCredentials({ ca: pem('other-ca.crt'), cert: pem('client.crt'), key: pem('client.key') }) }))).toBe('UNAVAILABLE'); // server not trusted
      expect(await attempt(trusted('other-client'))).toBe('UNAVAILABLE'); // client cert from another CA
      expect(await checkHealth(address, '', 5000, clientTlsCredentials({ ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') }))).toBe('SERVING');

      // Two real agents train over mutual TLS and end on the coordinator's weights.
      const agents: Agent[] = [0, 1].map((i) => makeAgent(f, trusted(), i));
      const runs = agents.map((a) => a.run());
      const report = await coordinator.run();
      expect(report).toMatchObject({ version: 3, stopped: false });
      await until(() => agents.every((a) => a.state.version === 3), 10_000, 'agents at the head');
      for (const agent of agents) expect(await agent.backend!.sha256()).toBe(coordinator.weightsSha256());
      await Promise.all(agents.map((a) => a.close()));
      await Promise.all(runs);
    } finally {
      await coordinator.close();
    }
  });

  it('wires --tls-* through `mezo coordinator` and `mezo agent`', async () => {
    // An in-process coordinator requiring client certificates and a token; the CLI agent must bring both.
    const server = new GrpcTransport({
      address: '127.0.0.1:0',
      serverCredentials: serverTlsCredentials({ cert: pem('server.crt'), key: pem('server.key'), clientCa: pem('ca.crt') }),
    });
    const coordinator = await startCoordinator(f, server, { ...rounds, jobId: 'tls-cli', tokens: { 'cli-agent': 'cli-secret' } });
    const agent = mezo(['agent', '--coordinator', coordinator.address!, '--agent-id', 'cli-agent', '--token', 'cli-secret', '--no-worker',
      '--tls-ca', pem('ca.crt'), '--tls-cert', pem('client.crt'), '--tls-key', pem('client.key')]);
    try {
      await until(() => coordinator.connectedAgents().includes('cli-agent'), 15_000, 'the CLI agent to connect over mutual TLS');
    } finally {
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      await coordinator.close();
    }

    // The CLI coordinator serving TLS: a health probe with the CA gets SERVING, a plaintext one does not.
    const logPath = join(dir, 'cli-tls', 'update.log');
    const cli = mezo(['coordinator', '--listen', '127.0.0.1:0', '--log', logPath, '--rounds', '1', '--tls-cert', pem('server.crt'), '--tls-key', pem('server.key')]);
    try {
      await until(() => /listening on (\S+),/.test(cli.stderr()), 15_000, 'the CLI coordinator to listen');
      const address = /listening on (\S+),/.exec(cli.stderr())![1]!;
      expect(await checkHealth(address, '', 5000, clientTlsCredentials({ ca: pem('ca.crt') }))).toBe('SERVING');
      expect(await codeOf(checkHealth(address, '', 2000))).toBe('UNAVAILABLE');
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });

  it('admits a client certificate only as the agent it was issued to, whatever token it brings', async () => {
    const server = new GrpcTransport({
      address: '127.0.0.1:0',
      serverCredentials: serverTlsCredentials({ cert: pem('bound-server.crt'), key: pem('bound-server.key'), clientCa: pem('bound-ca.crt') }),
    });
    const coordinator = await startCoordinator(f, server, { ...rounds, jobId: 'tls-bound', tokens: { 'dev-0': 'token-0', 'dev-1': 'token-1' } });
    const tls = new GrpcTransport({
      address: coordinator.address!,
      callTimeoutMs: 5000,
      channelCredentials: clientTlsCredentials({ ca: pem('bound-ca.crt'), cert: pem('bound-client.crt'), key: pem('bound-client.key') }),
    });
    const own = tls.connect({ agentId: 'dev-0', token: 'token-0' });
    const other = tls.connect({ agentId: 'dev-1', token: 'token-1' });
    try {
      expect((await own.join(joinRequest(f, 'dev-0', 'token-0'))).jobId).toBe('tls-bound');
      // dev-0's certificate with dev-1's valid token: refused on every call, before the token is looked at.
      expect(await codeOf(other.join(joinRequest(f, 'dev-1', 'token-1')))).toBe('PERMISSION_DENIED');
      expect(await codeOf(other.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('PERMISSION_DENIED');
      expect(await sessionOutcome(other)).toBe('PERMISSION_DENIED');
      expect(coordinator.agentStatus('dev-1')).toBeUndefined();
      expect(coordinator.authFailures().failed).toBe(0);
      expect(await codeOf(own.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('OK');
    } finally {
      own.close();
      other.close();
      await coordinator.close();
    }
  });

  it('serves server-only TLS to agents that trust its CA', async () => {
    const server = new GrpcTransport({ address: '127.0.0.1:0', serverCredentials: serverTlsCredentials({ cert: pem('server.crt'), key: pem('server.key') }) });
    const coordinator = await startCoordinator(f, server, { ...rounds, jobId: 'tls-test' });
    try {
      const client = new GrpcTransport({ address: coordinator.address!, serverNameOverride: 'localhost', channelCredentials: clientTlsCredentials({ ca: pem('ca.crt') }) }).connect({ agentId: 'a', token: '' });
      expect((await client.join(joinRequest(f, 'a', ''))).jobId).toBe('tls-test');
      client.close();
      expect(() => clientTlsCredentials({ ca: pem('ca.crt'), cert: pem('client.crt') })).toThrow(/needs its key/);
      expect(() => serverTlsCredentials({ cert: pem('missing.crt'), key: pem('server.key') })).toThrow(/cannot read the TLS certificate/);
    } finally {
      await coordinator.close();
    }
  });
});

describe('credentials, size limits and rate limits over gRPC', () => {
  let f: Fixture;
  let coordinator: Coordinator;
  let address: string;
  beforeAll(async () => {
    f = await fixture();
    coordinator = await startCoordinator(f, new GrpcTransport({ address: '127.0.0.1:0', maxMessageBytes: 8 * 1024 }), {
      ...rounds,
      jobId: 'auth-test',
      tokens: { 'dev-a': 'secret-a', 'dev-b': 'secret-b', 'dev-c': 'secret-c' },
      rateLimit: { perSecond: 20, burst: 20 },
    });
    address = coordinator.address!;
  });
  afterAll(() => coordinator.close());

  const connect = (agentId: string, token: string, maxMessageBytes = 8 * 1024) => new GrpcTransport({ address, maxMessageBytes, callTimeoutMs: 5000 }).connect({ agentId, token });

  it('refuses Join, Session (and so Results) and FetchLog without valid per-agent credentials', async () => {
    const wrong = connect('dev-a', 'secret-b');
    expect(await codeOf(wrong.join(joinRequest(f, 'dev-a', 'secret-b')))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connect('intruder', 'secret-a').join(joinRequest(f, 'intruder', 'secret-a')))).toBe('PERMISSION_DENIED');
    expect(await codeOf(connect('__proto__', '').join(joinRequest(f, '__proto__', '')))).toBe('PERMISSION_DENIED');

    const good = connect('dev-a', 'secret-a');
    expect((await good.join(joinRequest(f, 'dev-a', 'secret-a'))).jobId).toBe('auth-test');
    expect((await good.fetchLog({ fromVersion: 0, toVersion: 0 })).headVersion).toBe(0);
    // Same agent id, wrong token: no log, no session, no results.
    expect(await codeOf(wrong.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connect('intruder', '').fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('PERMISSION_DENIED');
    const refused = await sessionOutcome(wrong, (s) =>
      s.send({ kind: 'result', result: { round: 0, attempt: 0, seeds: [1n], g: [0], lossPlus: [1], lossMinus: [1], sampleCount: 1 } }),
    );
    expect(refused).toBe('UNAUTHENTICATED');
    expect(coordinator.agentStatus('dev-a')!.stats).toMatchObject({ accepted: 0, rejected: 0 });
    expect(coordinator.agentStatus('intruder')).toBeUndefined();

    // A valid session, then revocation: the stream ends and the agent cannot come back with any token.
    const ended = sessionOutcome(good);
    await until(() => coordinator.connectedAgents().includes('dev-a'), 5000, 'dev-a connected');
    coordinator.revoke('dev-a');
    expect(await ended).toBe('PERMISSION_DENIED');
    expect(await codeOf(good.join(joinRequest(f, 'dev-a', 'secret-a')))).toBe('PERMISSION_DENIED');
    expect(await codeOf(good.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('PERMISSION_DENIED');
    wrong.close();
    good.close();
  });

  it('refuses messages over the size limit with RESOURCE_EXHAUSTED', async () => {
    const big = connect('dev-b', 'secret-b', 1 << 20);
    await big.join(joinRequest(f, 'dev-b', 'secret-b'));
    const seeds = Array.from({ length: 1000 }, (_, i) => BigInt(i + 1));
    const zeros = seeds.map(() => 0);
    const outcome = await sessionOutcome(big, (s) => s.send({ kind: 'result', result: { round: 0, attempt: 0, seeds, g: zeros, lossPlus: zeros, lossMinus: zeros, sampleCount: 1 } }));
    expect(outcome).toBe('RESOURCE_EXHAUSTED');
    expect(await codeOf(big.join({ ...joinRequest(f, 'dev-b', 'secret-b'), token: 'x'.repeat(9000) }))).toBe('RESOURCE_EXHAUSTED');
    big.close();
  });

  it('ends the session of an agent flooding heartbeats, and refuses its calls, with RESOURCE_EXHAUSTED', async () => {
    const flood = connect('dev-c', 'secret-c');
    await flood.join(joinRequest(f, 'dev-c', 'secret-c'));
    const heartbeat = { kind: 'heartbeat' as const, heartbeat: { version: 0, weightsSha256: f.prepared.manifest.slabSha256 } };
    const outcome = await sessionOutcome(flood, (s) => {
      for (let i = 0; i < 100; i++) s.send(heartbeat);
    });
    expect(outcome).toBe('RESOURCE_EXHAUSTED');
    expect(coordinator.agentStatus('dev-c')!.stats.rateLimited).toBeGreaterThanOrEqual(1);
    const codes = await Promise.all(Array.from({ length: 5 }, () => codeOf(flood.fetchLog({ fromVersion: 0, toVersion: 0 }))));
    expect(codes).toContain('RESOURCE_EXHAUSTED');
    // The budget refills: after a pause the agent is served again.
    await new Promise((r) => setTimeout(r, 300));
    expect(await codeOf(flood.fetchLog({ fromVersion: 0, toVersion: 0 }))).toBe('OK');
    flood.close();
  });
});

