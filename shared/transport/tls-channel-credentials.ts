/**
 * gRPC channel credentials for TLS that send the server name (SNI) only when it is a name. grpc-js passes the
 * target's host as `servername` even for an IP literal, which RFC 6066 forbids and Node deprecates (DEP0123,
 * a warning per process, and an error in a future Node). Here an IP target gets no SNI, and its certificate is
 * still checked against the address (its IP SANs), as tls.connect does for a host without a server name. A DNS
 * name, or the name of `grpc.ssl_target_name_override` (--tls-server-name), is sent and checked as before.
 */
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect, type ConnectionOptions, type SecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

type ConnectorArgs = Parameters<grpc.ChannelCredentials['_createSecureConnector']>;
type SecureConnector = ReturnType<grpc.ChannelCredentials['_createSecureConnector']>;

/** The host of a gRPC target path: `host:port`, `[v6]:port`, or a bare host. */
export function targetHost(path: string): string {
  // A URI target (scheme://authority/host:port) names the host in its last segment.
  const hostPort = path.slice(path.lastIndexOf('/') + 1);
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    return end > 0 ? hostPort.slice(1, end) : hostPort;
  }
  const colon = hostPort.indexOf(':');
  // More than one colon without brackets is an IPv6 address with no port.
  return colon >= 0 && colon === hostPort.lastIndexOf(':') ? hostPort.slice(0, colon) : hostPort;
}

/** The tls.connect options for a target host: SNI and identity for a name, no SNI for an address. */
export function tlsOptionsForHost(host: string, nameOverride: string | undefined): Pick<ConnectionOptions, 'host' | 'servername' | 'checkServerIdentity'> {
  if (nameOverride) {
    return { host, servername: nameOverride, checkServerIdentity: (_host, cert) => checkServerIdentity(nameOverride, cert) };
  }
  return isIP(host) ? { host } : { host, servername: host };
}

export class TlsChannelCredentials extends grpc.ChannelCredentials {
  constructor(private readonly secureContext: SecureContext) {
    super();
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(...[target, options, callCredentials]: ConnectorArgs): SecureConnector {
    const override = options['grpc.ssl_target_name_override'];
    const proxied = options['grpc.http_connect_target'];
    const host = targetHost(typeof proxied === 'string' ? proxied : target.path);
    const connection: ConnectionOptions = {
      secureContext: this.secureContext,
      ALPNProtocols: ['h2'],
      ...tlsOptionsForHost(host, typeof override === 'string' ? override : undefined),
    };
    const calls = callCredentials ?? grpc.CallCredentials.createEmpty();
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          const tlsSocket = connect({ ...connection, socket }, () => {
            if (!tlsSocket.authorized) {
              reject(tlsSocket.authorizationError);
              return;
            }
            resolve({ socket: tlsSocket, secure: true });
          });
          tlsSocket.on('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => undefined,
    };
  }
}
