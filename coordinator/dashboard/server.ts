/**
 * The coordinator's operator HTTP server: Prometheus /metrics, /healthz, /readyz and, given a RunMonitor, the
 * live dashboard (the page, its assets, a server-sent event stream, the run record as JSON). Read-only: GET
 * and HEAD only. With a token, every route needs it — as `Authorization: Bearer <token>`, the `mezo_token`
 * cookie, or `?token=` (an EventSource cannot set headers, so browsers sign in once: `?token=` on a page sets
 * the HttpOnly cookie and redirects to the URL without it). Tokens are compared in constant time.
 * docs/dashboard.md lists the routes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { CoordinatorMetrics } from '../metrics.js';
import type { MonitorEvent, RunMonitor } from '../run-monitor.js';
import type { ServiceHealth } from '../../shared/transport/health.js';
import { DASHBOARD_CSS, DASHBOARD_JS, LOGIN_CSS, dashboardPage, loginPage } from './page.js';

export interface DashboardServerOptions {
  metrics?: CoordinatorMetrics;
  /** Enables the dashboard routes (/, /events, /api/run, /assets/*). */
  monitor?: RunMonitor;
  host?: string;
  port: number;
  /** Operator token every route requires when set (see above). */
  token?: string;
  /**
   * The coordinator's health (Coordinator.health, the one every transport's health check reads): /readyz
   * answers 200 while it is SERVING.
   */
  health?: ServiceHealth;
  /** Without `health`: /readyz answers 200 once this returns true. */
  ready?: () => boolean;
  /** Period of SSE keep-alive comments (default 15 s), so idle proxies keep the stream open. */
  keepAliveMs?: number;
}

export interface DashboardServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export const TOKEN_COOKIE = 'mezo_token';
/** A subscriber that falls this far behind (unsent bytes) is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison: digests first, so neither content nor length leaks through timing. */
function sameToken(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

function cookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function bearer(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

let assetCache: Promise<{ js: string; css: string }> | undefined;

/** uPlot's browser build and stylesheet, read from the installed npm package (no CDN). */
function uplotAssets(): Promise<{ js: string; css: string }> {
  assetCache ??= (async () => {
    const require = createRequire(import.meta.url);
    const [js, css] = await Promise.all([
      readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    ]);
    return { js, css };
  })();
  assetCache.catch(() => (assetCache = undefined));
  return assetCache;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};
// Scripts and styles come only from this server; uPlot sets element styles from script, which CSP allows.
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const LOGIN_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(LOGIN_CSS, 'utf8').digest('base64')}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** Serves the routes above; resolves with the bound address once listening. */
export async function serveDashboard(options: DashboardServerOptions): Promise<DashboardServer> {
  const { monitor, metrics, token } = options;
  const streams = new Set<ServerResponse>();
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const pages = new Set(['/', '/dashboard']);

  const serveEvents = (request: IncomingMessage, response: ServerResponse, run: RunMonitor): void => {
    response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    const write = (event: string, data: unknown): void => {
      if (response.writableLength > MAX_BUFFERED_BYTES) {
        response.destroy();
        return;
      }
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    response.write('retry: 2000\n\n');
    // History first, then live events, so a page opened mid-run (or reconnecting) draws the whole run.
    write('snapshot', run.snapshot());
    const unsubscribe = run.subscribe((event: MonitorEvent) => {
      switch (event.type) {
        case 'round':
          write('round', event.row);
          break;
        case 'evaluation':
          write('evaluation', event.evaluation);
          break;
        case 'fleet':
          write('fleet', event.fleet);
          break;
        case 'end':
          write('end', { endedAt: event.endedAt });
          break;
      }
    });
    const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref();
    streams.add(response);
    response.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(response);
    });
  };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD' }).end();
      return;
    }
    const isPage = monitor !== undefined && pages.has(path);
    if (token) {
      const fromQuery = url.searchParams.get('token') ?? undefined;
      if (isPage && fromQuery !== undefined) {
        // Sign-in: keep the token in an HttpOnly cookie and take it out of the address bar.
        if (!sameToken(fromQuery, token)) {
          send(response, 401, 'text/html; charset=utf-8', loginPage(true), { 'content-security-policy': LOGIN_CSP, 'www-authenticate': 'Bearer' });
          return;
        }
        url.searchParams.delete('token');
        response.writeHead(303, {
          ...SECURITY_HEADERS,
          location: `${path}${url.search}`,
          'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        });
        response.end();
        return;
      }
      const ok = sameToken(bearer(request), token) || sameToken(cookie(request, TOKEN_COOKIE), token) || sameToken(fromQuery, token);
      if (!ok) {
        if (isPage) send(response, 401, 'text/html; charset=utf-8', loginPage(false), { 'content-security-policy': LOGIN_CSP, 'www-authenticate': 'Bearer' });
        else send(response, 401, 'text/plain; charset=utf-8', 'unauthorised\n', { 'www-authenticate': 'Bearer' });
        return;
      }
    }
    if (path === '/metrics' && metrics) {
      metrics.registry.metrics().then(
        (body) => send(response, 200, metrics.registry.contentType, body),
        (err: Error) => send(response, 500, 'text/plain; charset=utf-8', `${err.message}\n`),
      );
    } else if (path === '/healthz') {
      send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      const ready = options.health ? options.health.serving : (options.ready?.() ?? true);
      send(response, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'ready\n' : 'not ready\n');
    } else if (monitor && pages.has(path)) {
      send(response, 200, 'text/html; charset=utf-8', dashboardPage(monitor.job), { 'content-security-policy': PAGE_CSP });
    } else if (monitor && path === '/events') {
      serveEvents(request, response, monitor);
    } else if (monitor && path === '/api/run') {
      send(response, 200, 'application/json', `${JSON.stringify(monitor.toRunRecord())}\n`);
    } else if (monitor && path === '/assets/dashboard.js') {
      send(response, 200, 'text/javascript; charset=utf-8', DASHBOARD_JS);
    } else if (monitor && path === '/assets/dashboard.css') {
      send(response, 200, 'text/css; charset=utf-8', DASHBOARD_CSS);
    } else if (monitor && (path === '/assets/uplot.js' || path === '/assets/uplot.css')) {
      uplotAssets().then(
        ({ js, css }) =>
          path.endsWith('.js') ? send(response, 200, 'text/javascript; charset=utf-8', js) : send(response, 200, 'text/css; charset=utf-8', css),
        (err: Error) => send(response, 500, 'text/plain; charset=utf-8', `uPlot is not installed: ${err.message}\n`),
      );
    } else {
      send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host ?? '127.0.0.1';
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Event streams never end on their own, and clients keep idle connections open: end both, so close()
        // does not wait for them (every response here is read-only, nothing is lost by cutting it).
        for (const stream of streams) stream.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
