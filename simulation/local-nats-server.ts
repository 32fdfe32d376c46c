/**
 * Starts a local nats-server (from PATH, e.g. Debian's `nats-server` package) for a simulated fleet or a test:
 * JetStream on, a free loopback port, a temporary store directory, and an optional configuration block
 * (authorization, TLS, accounts). `stop()` ends only the process started here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerOptions {
  /** Extra configuration appended after the listen and JetStream blocks (nats-server config syntax). */
  config?: string;
  /** Reuse this store directory (a restart over the same JetStream data); default: a fresh temporary one. */
  storeDir?: string;
  /** Reuse this port (a restart); default: a free one. */
  port?: number;
  /**
   * Also listen for NATS over WebSocket (plain ws://, loopback) on this port, or on a free one with `true`:
   * the listener browser agents reach with nats.ws.
   */
  websocket?: boolean | number;
}

export interface NatsServer {
  readonly port: number;
  /** nats://127.0.0.1:port */
  readonly url: string;
  /** ws://127.0.0.1:port of the WebSocket listener, when one was asked for. */
  readonly wsUrl: string | undefined;
  readonly storeDir: string;
  /** Everything the server wrote to stderr, for diagnosing a failed start. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; waits for the exit. Keeps the store unless `removeStore`. */
  stop(removeStore?: boolean): Promise<void>;
  /** SIGKILL at once (a crash); the store stays. */
  kill(): Promise<void>;
}

export function natsServerPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = natsServerPath();
  if (!binary) throw new Error('nats-server is not installed (apt-get install -y nats-server)');
  const port = options.port ?? (await freePort());
  const wsPort = options.websocket === true ? await freePort() : options.websocket || undefined;
  if (wsPort !== undefined && (!Number.isInteger(wsPort) || wsPort < 1 || wsPort > 65535)) {
    throw new RangeError(`startNatsServer: websocket must be true or a port in [1, 65535], got ${String(options.websocket)}`);
  }
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'mezo-nats-'));
  const configPath = join(storeDir, 'server.conf');
  writeFileSync(
    configPath,
    [
      `listen: "127.0.0.1:${port}"`,
      `jetstream { store_dir: ${JSON.stringify(join(storeDir, 'js'))}, max_memory_store: 256MB, max_file_store: 2GB }`,
      'max_payload: 8MB',
      // TLS off is for loopback only: a deployment puts TLS on the listener (docs/deploy.md).
      wsPort !== undefined ? `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }` : '',
      options.config ?? '',
    ].join('\n'),
  );
  const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode} at start:\n${stderr}`);
    // Ready once it accepts connections and has said so (JetStream is set up before "Server is ready").
    if (stderr.includes('Server is ready') && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not become ready on port ${port} within 10 s:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    wsUrl: wsPort !== undefined ? `ws://127.0.0.1:${wsPort}` : undefined,
    storeDir,
    output: () => stderr,
    stop: async (removeStore = false) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited(child);
        clearTimeout(timer);
      }
      if (removeStore) rmSync(storeDir, { recursive: true, force: true });
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    },
  };
}
