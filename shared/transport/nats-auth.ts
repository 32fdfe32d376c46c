/**
 * NATS connections and access control for a job: the client options (servers, user/password, token or nkey,
 * TLS and mutual TLS) and a generator of the nats-server `accounts` block that confines each agent's NATS user
 * to its own subjects (nats-subjects.ts). With it, an agent can publish only its own requests, session uplink and
 * the job's health check, subscribe only to its own downlink, the job's broadcast and its own reply inbox, and
 * read — never write — the job's log stream; the coordinator's user has every right on the job. Tokens are one
 * server-wide secret in NATS (no per-user permissions), so agent isolation needs users or nkeys.
 */
import { readFileSync } from 'node:fs';
import {
  connect,
  nkeyAuthenticator,
  nkeys,
  type ConnectionOptions,
  type NatsConnection,
} from 'nats';
import { TransportError } from './errors.js';
import { DEFAULT_SUBJECT_PREFIX, jobSubjects } from './nats-subjects.js';

/** How a client proves who it is to nats-server. */
export type NatsAuth =
  | { user: string; pass: string }
  | { token: string }
  /** An nkey user seed ("SU…"), as text, or the file that holds it. */
  | { nkeySeed: string }
  | { nkeySeedFile: string };

/** PEM files: the CA the server's certificate must chain to, and for mutual TLS the client's certificate and key. */
export interface NatsTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface NatsConnectOptions {
  /** nats://host:port, one or several (a cluster). */
  servers: string | string[];
  auth?: NatsAuth;
  /** Require TLS (an empty object: TLS with the system's CAs). */
  tls?: NatsTlsFiles;
  /** Shown in the server's monitoring. */
  name?: string;
  /** Reply subjects start with this (an agent's user may subscribe only to its own inbox). */
  inboxPrefix?: string;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** Connection handshake timeout, ms (default 10 s). */
  timeoutMs?: number;
}

export class NatsConfigError extends Error {
  override name = 'NatsConfigError';
}

function readSeed(auth: { nkeySeed: string } | { nkeySeedFile: string }): Uint8Array {
  let text: string;
  if ('nkeySeed' in auth) text = auth.nkeySeed;
  else {
    try {
      text = readFileSync(auth.nkeySeedFile, 'utf8');
    } catch (err) {
      throw new NatsConfigError(`cannot read the nkey seed file ${auth.nkeySeedFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  // A seed file may hold comments or a trailing newline; the seed is the one line that starts with S.
  const seed = text.split(/\s+/).find((word) => /^S[A-Z2-7]{50,}$/.test(word));
  if (!seed) throw new NatsConfigError('the nkey seed is not an nkey seed (a line "SU…")');
  return new TextEncoder().encode(seed);
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new NatsConfigError(`cannot read the NATS TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The nats.js options for `options` (files are read now, so a missing one fails before any connection attempt). */
export function natsConnectionOptions(options: NatsConnectOptions): ConnectionOptions {
  const out: ConnectionOptions = {
    servers: options.servers,
    timeout: options.timeoutMs ?? 10_000,
    reconnect: options.reconnect ?? true,
    maxReconnectAttempts: -1,
  };
  if (options.name) out.name = options.name;
  if (options.inboxPrefix) out.inboxPrefix = options.inboxPrefix;
  const auth = options.auth;
  if (auth && 'user' in auth) {
    out.user = auth.user;
    out.pass = auth.pass;
  } else if (auth && 'token' in auth) out.token = auth.token;
  else if (auth) out.authenticator = nkeyAuthenticator(readSeed(auth));
  if (options.tls) {
    const { ca, cert, key } = options.tls;
    if ((cert === undefined) !== (key === undefined)) throw new NatsConfigError('NATS TLS: a client certificate and its key go together');
    out.tls = {
      ...(ca ? { ca: readPem(ca, 'CA') } : {}),
      ...(cert ? { cert: readPem(cert, 'certificate') } : {}),
      ...(key ? { key: readPem(key, 'key') } : {}),
    };
  }
  return out;
}

/** Opens a connection; a failure is a TransportError (UNAUTHENTICATED for refused credentials, else UNAVAILABLE). */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const connectionOptions = natsConnectionOptions(options);
  try {
    return await connect(connectionOptions);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const servers = Array.isArray(options.servers) ? options.servers.join(', ') : options.servers;
    const denied = code === 'AUTHORIZATION_VIOLATION' || code === 'AUTHENTICATION_EXPIRED' || code === 'BAD_AUTHENTICATION';
    throw new TransportError(denied ? 'UNAUTHENTICATED' : 'UNAVAILABLE', `cannot connect to NATS at ${servers}: ${(err as Error).message}`, { cause: err });
  }
}

/** A fresh nkey user: the seed the client keeps secret and the public key the server configuration lists. */
export function createNatsUserNkey(): { seed: string; publicKey: string } {
  const pair = (nkeys as { createUser(): { getSeed(): Uint8Array; getPublicKey(): string } }).createUser();
  return { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
}

/** Subjects a NATS user may publish to and subscribe to. */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** What one agent's user may do: its own subjects, the broadcast, its inbox, and reading the log stream. */
export function agentPermissions(jobId: string, agentId: string, prefix = DEFAULT_SUBJECT_PREFIX): NatsPermissions {
  const s = jobSubjects(jobId, prefix);
  const rpc = s.rpc(agentId, 'join');
  const up = s.up(agentId, 'x');
  return {
    publish: [
      `${rpc.slice(0, rpc.lastIndexOf('.'))}.*`,
      `${up.slice(0, up.lastIndexOf('.'))}.*`,
      s.health,
      // Direct gets read single messages by sequence (or the last entry); they cannot change the stream.
      `$JS.API.DIRECT.GET.${s.stream}`,
      `$JS.API.DIRECT.GET.${s.stream}.>`,
    ],
    subscribe: [s.downOf(agentId), s.updates, `${s.inboxPrefix(agentId)}.>`],
  };
}

/** The coordinator's user: every subject of the job, the JetStream API of its account, and replies to any inbox. */
export function coordinatorPermissions(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): NatsPermissions {
  const s = jobSubjects(jobId, prefix);
  return { publish: [`${s.root}.>`, '$JS.API.>', '_INBOX.>'], subscribe: [`${s.root}.>`, '_INBOX.>'] };
}

/** A user entry of the server configuration: a user name and password, or an nkey's public key. */
export type NatsUserCredential = { user: string; password: string } | { nkey: string };

export interface JobAuthConfig {
  jobId: string;
  subjectPrefix?: string;
  /** The account holding the job (default `mezo-<job>`): its JetStream API and subjects are the job's alone. */
  account?: string;
  /** JetStream for the account (the log stream); default true. */
  jetstream?: boolean;
  coordinator: NatsUserCredential | NatsUserCredential[];
  agents: Array<{ agentId: string; credential: NatsUserCredential }>;
}

/**
 * The nats-server configuration block (`accounts { … }`) for one job: an account of its own, the coordinator's
 * user(s) with full rights on the job, and one confined user per agent. Append it to the server's configuration
 * (it is JSON, which the server's configuration syntax accepts).
 */
export function natsJobAuthConfig(config: JobAuthConfig): string {
  const prefix = config.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const entry = (credential: NatsUserCredential, permissions: NatsPermissions): Record<string, unknown> => {
    const who = 'nkey' in credential ? { nkey: credential.nkey } : { user: credential.user, password: credential.password };
    return { ...who, permissions: { publish: { allow: permissions.publish }, subscribe: { allow: permissions.subscribe } } };
  };
  const seen = new Set<string>();
  for (const { agentId } of config.agents) {
    if (seen.has(agentId)) throw new NatsConfigError(`natsJobAuthConfig: agent ${agentId} is listed twice`);
    seen.add(agentId);
  }
  const coordinators = Array.isArray(config.coordinator) ? config.coordinator : [config.coordinator];
  const account = {
    ...(config.jetstream === false ? {} : { jetstream: 'enabled' }),
    users: [
      ...coordinators.map((c) => entry(c, coordinatorPermissions(config.jobId, prefix))),
      ...config.agents.map((a) => entry(a.credential, agentPermissions(config.jobId, a.agentId, prefix))),
    ],
  };
  return `accounts: ${JSON.stringify({ [config.account ?? `mezo-${config.jobId}`]: account }, null, 2)}\n`;
}
