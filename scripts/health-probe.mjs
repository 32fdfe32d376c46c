#!/usr/bin/env node
// Probes the coordinator's operator server, or with --agent an agent's health server (mezo agent
// --health-listen), for service managers and container health checks:
//
//   node scripts/health-probe.mjs [--agent] [healthz|readyz] [host:port] [--wait SECONDS]
//
// Exits 0 when the endpoint answers 200, 1 otherwise. host:port defaults to MEZO_COORDINATOR_METRICS_LISTEN,
// with --agent to MEZO_AGENT_HEALTH_LISTEN (0.0.0.0 is probed as 127.0.0.1); MEZO_COORDINATOR_METRICS_TOKEN, when
// set, is sent as the bearer token the coordinator's server then requires on every route (never to an agent,
// whose endpoints need none). --wait retries once a second for that long (a start-up gate).
const args = process.argv.slice(2);
const waitAt = args.indexOf('--wait');
const waitSeconds = waitAt >= 0 ? Number(args.splice(waitAt, 2)[1]) : 0;
const agentAt = args.indexOf('--agent');
const agent = agentAt >= 0 && args.splice(agentAt, 1).length === 1;
const defaultListen = agent ? process.env.MEZO_AGENT_HEALTH_LISTEN ?? '127.0.0.1:9465' : process.env.MEZO_COORDINATOR_METRICS_LISTEN ?? '127.0.0.1:9464';
const [endpoint = 'healthz', listen = defaultListen] = args;
if (!['healthz', 'readyz'].includes(endpoint) || !Number.isFinite(waitSeconds) || waitSeconds < 0) {
  console.error('usage: health-probe.mjs [--agent] [healthz|readyz] [host:port] [--wait SECONDS]');
  process.exit(2);
}
const url = `http://${listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:')}/${endpoint}`;
const token = agent ? undefined : process.env.MEZO_COORDINATOR_METRICS_TOKEN;
const headers = token ? { authorization: `Bearer ${token}` } : {};

async function probe() {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
    return response.status === 200 ? undefined : `HTTP ${response.status}`;
  } catch (err) {
    return err instanceof Error ? (err.cause?.message ?? err.message) : String(err);
  }
}

const deadline = Date.now() + waitSeconds * 1000;
for (;;) {
  const failure = await probe();
  if (failure === undefined) process.exit(0);
  if (Date.now() >= deadline) {
    console.error(`${url}: ${failure}`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
