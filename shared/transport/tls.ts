/**
 * TLS for the gRPC transport, from PEM files. The coordinator presents a certificate (and, with a client CA,
 * requires and verifies one from every agent: mutual TLS); an agent trusts the CA that signed the
 * coordinator's certificate and, for mutual TLS, presents its own.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { TlsChannelCredentials } from './tls-channel-credentials.js';

export interface ServerTlsFiles {
  /** PEM certificate chain the coordinator presents. */
  cert: string;
  /** PEM private key of that certificate. */
  key: string;
  /** PEM CA bundle agents' client certificates must chain to; when set, a client certificate is required. */
  clientCa?: string | undefined;
}

export interface ClientTlsFiles {
  /** PEM CA bundle the coordinator's certificate must chain to. */
  ca: string;
  /** PEM client certificate and key, for a coordinator that requires mutual TLS. Both or neither. */
  cert?: string | undefined;
  key?: string | undefined;
}

export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

function readPem(path: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TlsConfigError(`cannot read the ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!bytes.toString('latin1').includes('-----BEGIN ')) throw new TlsConfigError(`the ${what} ${path} is not PEM`);
  return bytes;
}

export function serverTlsCredentials(files: ServerTlsFiles): grpc.ServerCredentials {
  const keyCertPair = { private_key: readPem(files.key, 'TLS key'), cert_chain: readPem(files.cert, 'TLS certificate') };
  const clientCa = files.clientCa ? readPem(files.clientCa, 'client CA') : null;
  return grpc.ServerCredentials.createSsl(clientCa, [keyCertPair], clientCa !== null);
}

export function clientTlsCredentials(files: ClientTlsFiles): grpc.ChannelCredentials {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new TlsConfigError('a client certificate needs its key and a key its certificate (--tls-cert with --tls-key)');
  }
  const ca = readPem(files.ca, 'CA bundle');
  const key = files.key ? readPem(files.key, 'TLS key') : undefined;
  const cert = files.cert ? readPem(files.cert, 'TLS certificate') : undefined;
  // Not grpc.credentials.createSsl: it would send an IP address as the TLS server name (tls-channel-credentials.ts).
  let context;
  try {
    context = createSecureContext({ ca, key, cert });
  } catch (err) {
    throw new TlsConfigError(`the TLS key and certificate do not make a usable pair: ${(err as Error).message}`, { cause: err });
  }
  return new TlsChannelCredentials(context);
}
