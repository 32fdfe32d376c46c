/**
 * `mezo nats-config`: the nats-server configuration for one job with a NATS user per party, so that only the
 * coordinator can publish on the job's log and updates subjects (docs/security.md, "NATS permissions"). Writes
 * accounts.conf (natsJobAuthConfig: the job's account, the coordinator's user, one confined user per agent),
 * nats.conf (listen address, JetStream store, `include accounts.conf`) and one password file per user (mode
 * 0600), which `--nats-pass "$(cat …)"` reads.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';

const natsConfigOptionsSchema = z.strictObject({
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -'),
  /** Agent ids; each becomes a NATS user of that name. */
  agents: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -')).min(1, 'must name at least one agent'),
  out: z.string().min(1),
  listen: z.string().regex(/^[^\s:]+:[0-9]{1,5}$/, 'must be host:port').default('127.0.0.1:4222'),
  subjectPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -').default('mezo'),
  /** The coordinator's NATS user name. */
  coordinatorUser: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -').default('coordinator'),
});
export type NatsConfigOptions = z.input<typeof natsConfigOptionsSchema>;

export interface NatsConfigFiles {
  config: string;
  accounts: string;
  /** User name → the file holding its password. */
  passwords: Record<string, string>;
}

/** Writes the job's server configuration and password files under options.out. */
export async function writeNatsConfig(input: NatsConfigOptions): Promise<NatsConfigFiles> {
  const parsed = natsConfigOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidArgumentError(`nats-config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const options = parsed.data;
  if (options.agents.includes(options.coordinatorUser)) throw new InvalidArgumentError(`nats-config: agents: ${options.coordinatorUser} is the coordinator's user`);
  const { natsJobAuthConfig } = await import('../shared/transport/index.js');
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const password = (): string => randomBytes(24).toString('base64url');
  const passwords: Record<string, string> = {};
  const credential = (user: string) => {
    const secret = password();
    const file = join(out, `${user}.password`);
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    passwords[user] = file;
    return { user, password: secret };
  };
  const accounts = natsJobAuthConfig({
    jobId: options.jobId,
    subjectPrefix: options.subjectPrefix,
    coordinator: credential(options.coordinatorUser),
    agents: options.agents.map((agentId) => ({ agentId, credential: credential(agentId) })),
  });
  const accountsFile = join(out, 'accounts.conf');
  writeFileSync(accountsFile, accounts, { mode: 0o600 });
  const configFile = join(out, 'nats.conf');
  writeFileSync(
    configFile,
    `# nats-server -c ${configFile}: job ${options.jobId}, written by mezo nats-config\n` +
      `listen: ${JSON.stringify(options.listen)}\n` +
      `jetstream { store_dir: ${JSON.stringify(join(out, 'jetstream'))} }\n` +
      `include ./accounts.conf\n`,
  );
  return { config: configFile, accounts: accountsFile, passwords };
}

export function registerNatsConfigCommand(program: Command): void {
  program
    .command('nats-config')
    .description('write a nats-server configuration for one job: a user per agent, confined to its own subjects; only the coordinator writes the log')
    .requiredOption('--job-id <id>', 'the job the server carries')
    .requiredOption('--agents <ids>', 'comma-separated agent ids (each becomes a NATS user)')
    .requiredOption('--out <dir>', 'where nats.conf, accounts.conf and the password files go')
    .option('--listen <host:port>', 'the server\'s client address (default 127.0.0.1:4222)')
    .option('--subject-prefix <prefix>', 'root of the job\'s subjects (default mezo)')
    .option('--coordinator-user <name>', 'the coordinator\'s NATS user (default coordinator)')
    .action(async (flags: { jobId: string; agents: string; out: string; listen?: string; subjectPrefix?: string; coordinatorUser?: string }) => {
      const files = await writeNatsConfig({
        ...flags,
        agents: flags.agents.split(',').map((a) => a.trim()).filter((a) => a !== ''),
      });
      process.stdout.write(`wrote ${files.config} (start it with nats-server -c ${files.config})\n`);
      for (const [user, file] of Object.entries(files.passwords)) process.stdout.write(`user ${user}: password in ${file}\n`);
    });
}
