/**
 * `mezo nats-config` writes a server configuration that nats-server accepts, under which only the coordinator's
 * user can write the job's log and updates subjects: an agent's publishes there are refused by the server, so
 * neither garbage nor a forged update from an agent's credentials reaches the stream or the other agents.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from 'nats';
import { writeNatsConfig, type NatsConfigFiles } from '../../cli/nats-config-command.js';
import { LogSigner, openJetStreamLog } from '../../shared/log/index.js';
import { connectNats, jobSubjects } from '../../shared/transport/index.js';
import { natsServerPath, startNatsServer, type NatsServer } from '../helpers/nats-server.js';

const JOB = 'configured';
const subjects = jobSubjects(JOB);
const header = { jobId: JOB, baseSha256: 'ab'.repeat(32), distribution: 'gaussian' as const };

describe.skipIf(!natsServerPath())('mezo nats-config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-nats-config-'));
  let files: NatsConfigFiles;
  let server: NatsServer;
  const connections: NatsConnection[] = [];
  const password = (user: string) => readFileSync(files.passwords[user]!, 'utf8').trim();

  beforeAll(async () => {
    files = await writeNatsConfig({ jobId: JOB, agents: ['a0', 'a1'], out: join(dir, 'nats') });
    // The helper picks its own port and store; the accounts are what nats-config wrote.
    server = await startNatsServer({ config: readFileSync(files.accounts, 'utf8') });
  });
  afterAll(async () => {
    await Promise.all(connections.map((c) => c.close()));
    await server?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a configuration nats-server accepts, with private password files', () => {
    const checked = spawnSync(natsServerPath()!, ['-c', files.config, '-t'], { encoding: 'utf8' });
    expect(checked.status, checked.stderr).toBe(0);
    expect(Object.keys(files.passwords).sort()).toEqual(['a0', 'a1', 'coordinator']);
    for (const file of Object.values(files.passwords)) expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('lets only the coordinator write the log and the updates; an agent user is refused by the server', async () => {
    const coordinator = await connectNats({ servers: server.url, auth: { user: 'coordinator', pass: password('coordinator') } });
    connections.push(coordinator);
    const log = await openJetStreamLog({ connection: coordinator, header, signer: LogSigner.generate() });
    await log.append({ round: 0, lr: 1e-3, terms: [{ seed: 1n, coeff: 0.5 }] });

    const violations: string[] = [];
    const agent = await connectNats({ servers: server.url, auth: { user: 'a0', pass: password('a0') } });
    connections.push(agent);
    void (async () => {
      for await (const status of agent.status()) {
        const context = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
        if (status.type === 'error' && context) violations.push(`${context.operation} ${context.subject}`);
      }
    })();
    agent.publish(subjects.logEntry, Buffer.alloc(64, 1));
    agent.publish(subjects.updates, Buffer.alloc(64, 2));
    await agent.flush();
    const deadline = Date.now() + 10_000;
    while (violations.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(violations.some((v) => v.includes(subjects.logEntry))).toBe(true);
    expect(violations.some((v) => v.includes(subjects.updates))).toBe(true);

    // Nothing reached the stream: the coordinator's second append needs no skipping.
    expect((await log.append({ round: 1, lr: 1e-3, terms: [{ seed: 2n, coeff: 0.5 }] })).version).toBe(2);
    expect(log.ignoredRecords).toBe(0);
    await log.close();
  });
});
