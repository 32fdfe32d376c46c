import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../../coordinator/index.js';
import { CoordinatorMetrics } from '../../../coordinator/metrics.js';
import { RunMonitor } from '../../../coordinator/run-monitor.js';
import { serveDashboard, TOKEN_COOKIE, type DashboardServer } from '../../../coordinator/dashboard/server.js';
import type { RoundRow } from '../../../coordinator/run-record.js';
import { InMemoryTransport } from '../../../shared/transport/index.js';
import { readEvents, scriptedAgent, scriptedCoordinator } from './scripted-fleet.js';

const ROUNDS = 5;
const TOKEN = 'operator-secret';
const ROUTES = ['/', '/dashboard', '/events', '/api/run', '/metrics', '/healthz', '/readyz', '/assets/dashboard.js', '/assets/dashboard.css', '/assets/uplot.js', '/assets/uplot.css'];

/** GETs a route and reads no more than the headers of a stream (the event stream never ends on its own). */
async function status(url: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; headers: Headers }> {
  const abort = new AbortController();
  const response = await fetch(url, { ...init, signal: abort.signal, redirect: 'manual' });
  abort.abort();
  return { status: response.status, type: response.headers.get('content-type'), headers: response.headers };
}

describe('dashboard server', () => {
  let coordinator: Coordinator;
  let monitor: RunMonitor;
  let server: DashboardServer;
  let live: Promise<Array<{ event: string; data: unknown }>>;
  const bearer = { headers: { authorization: `Bearer ${TOKEN}` } };

  beforeAll(async () => {
    const transport = new InMemoryTransport();
    coordinator = scriptedCoordinator(transport, { rounds: ROUNDS, strategy: { agentsPerRound: 2, seedMode: 'shared' } });
    const metrics = new CoordinatorMetrics(coordinator);
    monitor = new RunMonitor({ coordinator, metrics, fleetIntervalMs: 0 });
    server = await serveDashboard({ metrics, monitor, port: 0, token: TOKEN, ready: () => coordinator.address !== undefined });
    await coordinator.listen();
    await scriptedAgent(transport, 'a1', 1);
    await scriptedAgent(transport, 'a2', -1);
    // Subscribe before the run: the stream must carry the snapshot and then every round as it commits.
    const response = await fetch(`${server.url}/events`, bearer);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    live = readEvents(response, (events) => events.filter((e) => e.event === 'round').length >= ROUNDS);
    await coordinator.run();
  });
  afterAll(async () => {
    monitor.finish();
    await server.close();
    await coordinator.close();
  });

  it('streams a snapshot and then one round event per committed round', async () => {
    const events = await live;
    expect(events[0]!.event).toBe('snapshot');
    const rounds = events.filter((e) => e.event === 'round').map((e) => e.data as RoundRow);
    expect(rounds.map((r) => r.round)).toEqual([0, 1, 2, 3, 4]);
    expect(rounds.every((r) => r.asked === 2 && r.answered === 2)).toBe(true);
    expect(events.some((e) => e.event === 'fleet')).toBe(true);
  });

  it('gives a page opened late the history, then live events', async () => {
    const response = await fetch(`${server.url}/events?token=${TOKEN}`);
    const pending = readEvents(response, (events) => events.some((e) => e.event === 'evaluation'));
    await new Promise((r) => setTimeout(r, 50));
    monitor.recordEvaluation(ROUNDS - 1, { accuracy: 0.9 });
    const events = await pending;
    const snapshot = events[0]!;
    expect(snapshot.event).toBe('snapshot');
    expect((snapshot.data as { rounds: RoundRow[] }).rounds).toHaveLength(ROUNDS);
    expect(events.find((e) => e.event === 'evaluation')!.data).toEqual({ round: ROUNDS - 1, accuracy: 0.9, loss: null });
  });

  it('refuses every route without the token and serves it with the bearer header, the cookie or ?token=', async () => {
    for (const route of ROUTES) {
      expect((await status(`${server.url}${route}`)).status, `${route} without a token`).toBe(401);
      expect((await status(`${server.url}${route}`, { headers: { authorization: 'Bearer wrong' } })).status, `${route} with a wrong token`).toBe(401);
      expect((await status(`${server.url}${route}`, { headers: { cookie: `${TOKEN_COOKIE}=nope` } })).status, `${route} with a wrong cookie`).toBe(401);
      expect((await status(`${server.url}${route}`, bearer)).status, `${route} with the bearer token`).toBe(200);
      expect((await status(`${server.url}${route}`, { headers: { cookie: `other=1; ${TOKEN_COOKIE}=${TOKEN}` } })).status, `${route} with the cookie`).toBe(200);
    }
    expect((await status(`${server.url}/metrics?token=${TOKEN}`)).status).toBe(200);
    expect((await status(`${server.url}/nothing`, bearer)).status).toBe(404);
  });

  it('is read-only: anything but GET and HEAD is refused', async () => {
    for (const route of ROUTES) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const result = await status(`${server.url}${route}`, { ...bearer, method });
        expect(result.status, `${method} ${route}`).toBe(405);
        expect(result.headers.get('allow')).toBe('GET, HEAD');
      }
    }
    expect((await status(`${server.url}/`, { ...bearer, method: 'HEAD' })).status).toBe(200);
  });

  it('signs a browser in: ?token= on the page sets an HttpOnly cookie and redirects to the URL without it', async () => {
    const ok = await status(`${server.url}/dashboard?token=${TOKEN}&view=1`);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/dashboard?view=1');
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^${TOKEN_COOKIE}=${TOKEN};`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const wrong = await fetch(`${server.url}/?token=guess`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect(await wrong.text()).toMatch(/<form method="get">/);
    const login = await fetch(`${server.url}/`);
    expect(login.status).toBe(401);
    expect(login.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('serves the page with its bundled assets and a strict content security policy', async () => {
    const page = await fetch(`${server.url}/`, bearer);
    const html = await page.text();
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(html).toMatch(/<script src="assets\/uplot\.js"><\/script>/);
    expect(html).not.toMatch(/https?:\/\//);
    const uplot = await (await fetch(`${server.url}/assets/uplot.js`, bearer)).text();
    expect(uplot).toMatch(/uPlot/);
    expect(uplot.length).toBeGreaterThan(10_000);
    const record = (await (await fetch(`${server.url}/api/run`, bearer)).json()) as { rounds: unknown[]; kind: string };
    expect(record.kind).toBe('coordinator');
    expect(record.rounds).toHaveLength(ROUNDS);
  });
});

describe('dashboard server without a token', () => {
  it('serves every route openly (the operator chose no token)', async () => {
    const transport = new InMemoryTransport();
    const coordinator = scriptedCoordinator(transport, { rounds: 1 });
    const monitor = new RunMonitor({ coordinator, fleetIntervalMs: 0 });
    const server = await serveDashboard({ monitor, port: 0 });
    try {
      expect((await status(`${server.url}/`)).status).toBe(200);
      expect((await status(`${server.url}/events`)).status).toBe(200);
      // Without metrics, /metrics is not served.
      expect((await status(`${server.url}/metrics`)).status).toBe(404);
    } finally {
      monitor.finish();
      await server.close();
      await coordinator.close();
    }
  });
});
