import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTlsCredentials } from '../../../shared/transport/index.js';
import { targetHost, tlsOptionsForHost } from '../../../shared/transport/tls-channel-credentials.js';
import { haveOpenssl, makeTestPki } from '../../helpers/test-pki.js';

describe('the TLS server name of a gRPC target', () => {
  it('is the host of the target path', () => {
    expect(targetHost('127.0.0.1:7070')).toBe('127.0.0.1');
    expect(targetHost('coordinator.example:443')).toBe('coordinator.example');
    expect(targetHost('[::1]:7070')).toBe('::1');
    expect(targetHost('::1')).toBe('::1');
    expect(targetHost('localhost')).toBe('localhost');
    expect(targetHost('//dns-server/10.0.0.5:7070')).toBe('10.0.0.5');
  });

  it('is sent for a name and left out for an IP address, unless a name is given for it', () => {
    expect(tlsOptionsForHost('10.0.0.5', undefined)).toEqual({ host: '10.0.0.5' });
    expect(tlsOptionsForHost('::1', undefined)).toEqual({ host: '::1' });
    expect(tlsOptionsForHost('coordinator.example', undefined)).toEqual({ host: 'coordinator.example', servername: 'coordinator.example' });
    expect(tlsOptionsForHost('10.0.0.5', 'coordinator.example')).toMatchObject({ host: '10.0.0.5', servername: 'coordinator.example' });
  });
});

describe.skipIf(!haveOpenssl)('clientTlsCredentials against a TLS server on loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mezo-sni-'));
  let server: Server;
  let port: number;
  const seen: Array<string | false | null> = [];

  beforeAll(async () => {
    makeTestPki(dir, 'sni-');
    server = createServer({ key: readFileSync(join(dir, 'sni-server.key')), cert: readFileSync(join(dir, 'sni-server.crt')), ALPNProtocols: ['h2'] });
    server.on('secureConnection', (socket: TLSSocket) => {
      seen.push(socket.servername);
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects through the credentials' connector as grpc-js would, and returns the SNI the server saw. */
  async function handshake(path: string, options: Record<string, string> = {}): Promise<string | false | null> {
    const credentials = clientTlsCredentials({ ca: join(dir, 'sni-ca.crt') });
    const connector = credentials._createSecureConnector({ path }, options);
    const socket = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const before = seen.length;
    const { socket: secure } = await connector.connect(socket);
    await new Promise<void>((resolve) => (seen.length > before ? resolve() : server.once('secureConnection', () => resolve())));
    secure.destroy();
    return seen[before]!;
  }

  it('sends no server name to an IP address, and still checks the certificate against the address', async () => {
    expect(await handshake(`127.0.0.1:${port}`)).toBe(false);
  });

  it('sends the host name, or the name given by grpc.ssl_target_name_override', async () => {
    expect(await handshake(`localhost:${port}`)).toBe('localhost');
    expect(await handshake(`127.0.0.1:${port}`, { 'grpc.ssl_target_name_override': 'localhost' })).toBe('localhost');
  });

  it('refuses a certificate that does not name the server name given', async () => {
    await expect(handshake(`127.0.0.1:${port}`, { 'grpc.ssl_target_name_override': 'other.example' })).rejects.toThrow(/other\.example/);
  });
});
