/**
 * Opening a NATS connection: the client options (servers, user/password, token or nkey, TLS and mutual TLS)
 * turned into nats.js options, and the connect function that opens the link. That function is injected
 * (`NatsConnectFn`, default the `nats` package's TCP connect for Node), so another link with the same
 * connection API — nats.ws over a WebSocket in a browser — plugs in without touching the protocol code.
 * Files (TLS PEMs, an nkey seed) are read through a reader that is injected too (`NatsFileReader`, default
 * node:fs, loaded only when a file is named), and TLS material may be given as text instead, so this module
 * imports nothing of Node's and a browser build takes it as it is.
 */
import { connect as tcpConnect, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import { TransportError } from '../errors.js';

/**
 * Opens a connection from nats.js options: the `nats` package's `connect` (TCP, Node) by default; nats.ws's
 * `connect` has the same shape.
 */
export type NatsConnectFn = (options: ConnectionOptions) => Promise<NatsConnection>;

export const defaultNatsConnect: NatsConnectFn = tcpConnect;

/** How a client proves who it is to nats-server. */
export type NatsAuth =
  | { user: string; pass: string }
  | { token: string }
  /** An nkey user seed ("SU…"), as text, or the file that holds it. */
  | { nkeySeed: string }
  | { nkeySeedFile: string };

/**
 * The CA the server's certificate must chain to, and for mutual TLS the client's certificate and key: each as
 * a PEM file's path (`ca`, `cert`, `key`) or as PEM text (`caPem`, `certPem`, `keyPem`, for a platform without
 * files), not both.
 */
export interface NatsTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  caPem?: string;
  certPem?: string;
  keyPem?: string;
}

/** Reads a text file (TLS PEMs, an nkey seed file). */
export type NatsFileReader = (path: string) => string | Promise<string>;

/** node:fs, imported on first use: a platform that names no files never loads it. */
export const nodeFileReader: NatsFileReader = async (path) => (await import('node:fs/promises')).readFile(path, 'utf8');

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
  /** How TLS and nkey seed files are read (default node:fs). */
  readFile?: NatsFileReader;
}

export class NatsConfigError extends Error {
  override name = 'NatsConfigError';
}

async function readSeed(auth: { nkeySeed: string } | { nkeySeedFile: string }, readFile: NatsFileReader): Promise<Uint8Array> {
  let text: string;
  if ('nkeySeed' in auth) text = auth.nkeySeed;
  else {
    try {
      text = await readFile(auth.nkeySeedFile);
    } catch (err) {
      throw new NatsConfigError(`cannot read the nkey seed file ${auth.nkeySeedFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  // A seed file may hold comments or a trailing newline; the seed is the one line that starts with S.
  const seed = text.split(/\s+/).find((word) => /^S[A-Z2-7]{50,}$/.test(word));
  if (!seed) throw new NatsConfigError('the nkey seed is not an nkey seed (a line "SU…")');
  return new TextEncoder().encode(seed);
}

/** One TLS item, from its file or its text; NatsConfigError names the fields when both are given. */
async function readPem(path: string | undefined, pem: string | undefined, field: string, what: string, readFile: NatsFileReader): Promise<string | undefined> {
  if (path !== undefined && pem !== undefined) throw new NatsConfigError(`NATS TLS: give tls.${field} (a file) or tls.${field}Pem (its text), not both`);
  if (pem !== undefined) {
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN ')) throw new NatsConfigError(`NATS TLS: tls.${field}Pem must be PEM text (-----BEGIN …)`);
    return pem;
  }
  if (path === undefined || path === '') return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new NatsConfigError(`cannot read the NATS TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The nats.js options for `options`. Files are read now (through `options.readFile`, default node:fs), so a
 * missing one fails before any connection attempt.
 */
export async function natsConnectionOptions(options: NatsConnectOptions): Promise<ConnectionOptions> {
  const readFile = options.readFile ?? nodeFileReader;
  if (typeof readFile !== 'function') throw new NatsConfigError('readFile must be a function (path) => string | Promise<string>');
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
  else if (auth) out.authenticator = nkeyAuthenticator(await readSeed(auth, readFile));
  if (options.tls) {
    const tls = options.tls;
    if ((tls.cert === undefined && tls.certPem === undefined) !== (tls.key === undefined && tls.keyPem === undefined)) {
      throw new NatsConfigError('NATS TLS: a client certificate and its key go together');
    }
    const ca = await readPem(tls.ca, tls.caPem, 'ca', 'CA', readFile);
    const cert = await readPem(tls.cert, tls.certPem, 'cert', 'certificate', readFile);
    const key = await readPem(tls.key, tls.keyPem, 'key', 'key', readFile);
    out.tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }
  return out;
}

/**
 * Opens a connection through `connect` (default: TCP); a failure is a TransportError (UNAUTHENTICATED for
 * refused credentials, else UNAVAILABLE).
 */
export async function connectNats(options: NatsConnectOptions, connect: NatsConnectFn = defaultNatsConnect): Promise<NatsConnection> {
  const connectionOptions = await natsConnectionOptions(options);
  if (typeof connect !== 'function') throw new NatsConfigError('connectNats: connect must be a function (options) => Promise<NatsConnection>');
  try {
    return await connect(connectionOptions);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const servers = Array.isArray(options.servers) ? options.servers.join(', ') : options.servers;
    const denied = code === 'AUTHORIZATION_VIOLATION' || code === 'AUTHENTICATION_EXPIRED' || code === 'BAD_AUTHENTICATION';
    throw new TransportError(denied ? 'UNAUTHENTICATED' : 'UNAVAILABLE', `cannot connect to NATS at ${servers}: ${(err as Error).message}`, { cause: err });
  }
}

