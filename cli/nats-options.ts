/**
 * The NATS options `mezo coordinator` and `mezo agent` share (`--transport nats`): servers, credentials
 * (user/password, token or an nkey seed file), TLS files and the subject prefix, as one `nats` block of the
 * config (defaults < file < MEZO_<ROLE>_* < flags), plus what the coordinator opens with them.
 */
import { z } from 'zod';
import type { OptionSpecs } from './command-options.js';
import type { LogHeaderInput, LogSigner, UpdateLog } from '../shared/log/index.js';
import type { NatsAuth, NatsConnectOptions, Transport } from '../shared/transport/index.js';

export const natsConfigSchema = z
  .strictObject({
    /** One or more server URLs, comma-separated (a cluster). */
    url: z.string().min(1).default('nats://127.0.0.1:4222'),
    user: z.string().min(1).optional(),
    pass: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    /** A file holding the nkey user seed ("SU…"). */
    nkeySeedFile: z.string().min(1).optional(),
    /** TLS: the CA the server's certificate must chain to; for mutual TLS also this client's certificate and key. */
    tlsCa: z.string().min(1).optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** Root of the job's subject tree. */
    subjectPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens of A-Z a-z 0-9 _ -')
      .default('mezo'),
    /** Coordinator with --log-store jetstream: servers that store the log stream (a JetStream cluster for more than 1). */
    replicas: z.number().int().min(1).max(5).default(1),
  })
  .refine((c) => (c.user === undefined) === (c.pass === undefined), { path: ['pass'], message: '--nats-user and --nats-pass go together' })
  .refine((c) => [c.user, c.token, c.nkeySeedFile].filter((v) => v !== undefined).length <= 1, {
    path: ['token'],
    message: 'use one of --nats-user/--nats-pass, --nats-token and --nats-nkey-seed-file',
  })
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { path: ['tlsKey'], message: '--nats-tls-cert and --nats-tls-key go together' });
export type NatsConfig = z.output<typeof natsConfigSchema>;

/**
 * The NATS flags (cli/command-options.ts derives each one's MEZO_<ROLE>_* variable, e.g. MEZO_AGENT_NATS_URL,
 * and parser from these and the schema); `transport` and the `nats` block are config keys of both commands.
 */
export const natsOptionSpecs = {
  transport: { key: 'transport', arg: '<kind>', help: 'grpc | nats (default grpc)' },
  natsUrl: { key: 'nats.url', arg: '<urls>', help: 'NATS server URL(s), comma-separated (default nats://127.0.0.1:4222)' },
  natsUser: { key: 'nats.user', arg: '<name>', help: 'NATS user (with --nats-pass)' },
  natsPass: { key: 'nats.pass', arg: '<password>', help: 'NATS password' },
  natsToken: { key: 'nats.token', arg: '<token>', help: 'NATS server token' },
  natsNkeySeedFile: { key: 'nats.nkeySeedFile', arg: '<file>', help: 'file holding this client\'s NATS nkey seed' },
  natsTlsCa: { key: 'nats.tlsCa', arg: '<pem>', help: 'connect to NATS over TLS, trusting this CA bundle' },
  natsTlsCert: { key: 'nats.tlsCert', arg: '<pem>', help: 'mutual TLS to NATS: this client\'s certificate (with --nats-tls-key)' },
  natsTlsKey: { key: 'nats.tlsKey', arg: '<pem>', help: 'private key of --nats-tls-cert' },
  natsSubjectPrefix: { key: 'nats.subjectPrefix', arg: '<prefix>', help: 'root of the job\'s NATS subjects (default mezo)' },
} satisfies OptionSpecs;

function natsAuth(config: NatsConfig): NatsAuth | undefined {
  if (config.user !== undefined && config.pass !== undefined) return { user: config.user, pass: config.pass };
  if (config.token !== undefined) return { token: config.token };
  if (config.nkeySeedFile !== undefined) return { nkeySeedFile: config.nkeySeedFile };
  return undefined;
}

/** The transport-level connection options of a `nats` block. */
export function natsTransportOptions(config: NatsConfig): Pick<NatsConnectOptions, 'servers' | 'auth' | 'tls'> {
  const auth = natsAuth(config);
  const tls = config.tlsCa || config.tlsCert ? { ca: config.tlsCa, cert: config.tlsCert, key: config.tlsKey } : undefined;
  return {
    servers: config.url.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
  };
}

export interface CoordinatorNats {
  transport: Transport;
  /** The JetStream log when the log store is the stream. */
  log: UpdateLog | undefined;
  /** A line for stderr about the log stream (undefined with a file log). */
  logNote: string | undefined;
  /** Closes the connection (after the coordinator closed its listener and log). */
  close(): Promise<void>;
}

/** The coordinator's NATS side: one connection for the transport and (with logStore 'jetstream') the log stream. */
export async function openCoordinatorNats(
  config: NatsConfig,
  options: { jobId: string; header: LogHeaderInput; logStore: 'file' | 'jetstream'; maxMessageBytes: number; signer?: LogSigner },
): Promise<CoordinatorNats> {
  const { NatsTransport, connectNats } = await import('../shared/transport/index.js');
  const { openJetStreamLog } = await import('../shared/log/index.js');
  const connection = await connectNats({ ...natsTransportOptions(config), name: `mezo-coordinator ${options.jobId}` });
  try {
    const log =
      options.logStore === 'jetstream'
        ? await openJetStreamLog({ connection, header: options.header, subjectPrefix: config.subjectPrefix, replicas: config.replicas, ...(options.signer ? { signer: options.signer } : {}) })
        : undefined;
    const transport = new NatsTransport({ jobId: options.jobId, connection, subjectPrefix: config.subjectPrefix, maxMessageBytes: options.maxMessageBytes });
    return {
      transport,
      log,
      logNote: log
        ? `update log: JetStream stream ${transport.subjects.stream}, ${log.version} entries verified` +
          (log.ignoredRecords > 0 ? `, ${log.ignoredRecords} foreign messages on its subjects ignored` : '')
        : undefined,
      close: async () => {
        // Drain delivers what is in flight; a server that is gone must not hold the exit up.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([connection.drain().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
        clearTimeout(timer);
        if (!connection.isClosed()) await connection.close().catch(() => undefined);
      },
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
