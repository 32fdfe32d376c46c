/**
 * The agent's health endpoints for service managers and container health checks (docs/deploy.md): GET or HEAD
 * /healthz answers 200 while the agent's run loop is alive, 503 once it has ended or failed; /readyz answers 200
 * when the agent holds an open session at the newest version it has heard of, 503 with a one-line reason
 * otherwise. Every other path is 404, every other method 405. The bodies carry states and versions only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentHealth } from './agent.js';

export interface AgentHealthServerOptions {
  /** Read on every request (Agent.health). */
  health: () => AgentHealth;
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface AgentHealthServer {
  server: Server;
  /** http://host:port, with the port actually bound. */
  url: string;
  close(): Promise<void>;
}

/** "host:port" (IPv6 hosts in brackets) as --health-listen takes it; errors name the option. */
export function parseListen(listen: string, field = 'healthListen'): { host: string; port: number } {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`${field}: must be host:port with a port of 0-65535, got ${JSON.stringify(listen)}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function answer(response: ServerResponse, head: boolean, status: number, body: string, extra: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...extra });
  response.end(head ? undefined : body);
}

function handle(request: IncomingMessage, response: ServerResponse, health: () => AgentHealth): void {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/healthz' && path !== '/readyz') return answer(response, request.method === 'HEAD', 404, 'not found\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') return answer(response, false, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  const head = request.method === 'HEAD';
  const state = health();
  if (path === '/healthz') return answer(response, head, state.alive ? 200 : 503, state.alive ? 'ok\n' : `${state.reason}\n`);
  answer(response, head, state.ready ? 200 : 503, `${state.reason}\n`);
}

/** Listens on host:port; resolves once bound. */
export async function serveAgentHealth(options: AgentHealthServerOptions): Promise<AgentHealthServer> {
  if (typeof options.health !== 'function') throw new TypeError('serveAgentHealth: options.health must be a function');
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new RangeError(`serveAgentHealth: options.port must be an integer 0-65535, got ${options.port}`);
  const server = createServer((request, response) => {
    try {
      handle(request, response, options.health);
    } catch {
      // A health read that throws is an unhealthy agent, not a crashed process.
      if (!response.headersSent) answer(response, false, 503, 'health unavailable\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
