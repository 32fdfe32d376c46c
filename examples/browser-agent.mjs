// A browser agent for a running job (docs/deploy.md, "Browser agents"): serves a page that runs one agent of the
// job in the browser that opens it, over nats-server's WebSocket listener. The agent's examples are the default
// task's share `--agent-index` of `--num-agents`, as `mezo agent --agent-index k --num-agents n` would take.
//
//   npm run build    # once, from a source checkout (the page's bundle is built from edge-agent/browser/)
//   node examples/browser-agent.mjs --nats-ws ws://127.0.0.1:8080 --job-id demo --agent-index 1 --num-agents 2
//
// then open the printed URL. Ctrl-C stops serving (the page keeps training until it is closed).
import { parseArgs } from 'node:util';
import { defaultTask, loadDefaultModel } from 'mezo-fleet/model';
import { serveBrowserAgentPage } from '../dist/simulation/browser-page.js';

const { values } = parseArgs({
  options: {
    'nats-ws': { type: 'string' },
    'job-id': { type: 'string' },
    'agent-index': { type: 'string', default: '0' },
    'num-agents': { type: 'string', default: '10' },
    'agent-id': { type: 'string' },
    'task-seed': { type: 'string', default: '0' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

function fail(message) {
  console.error(`browser-agent: ${message}`);
  process.exit(2);
}

const integer = (name, min) => {
  const value = Number(values[name]);
  if (!Number.isSafeInteger(value) || value < min) fail(`--${name} must be an integer >= ${min}, got ${values[name]}`);
  return value;
};
if (!values['nats-ws'] || !/^wss?:\/\//.test(values['nats-ws'])) fail('--nats-ws must be the ws:// or wss:// URL of nats-server\'s websocket listener');
if (!values['job-id']) fail('--job-id is required (the coordinator\'s --job-id)');
const agentIndex = integer('agent-index', 0);
const numAgents = integer('num-agents', 1);
if (agentIndex >= numAgents) fail('--agent-index must be below --num-agents');

// The same partition as mezo agent's (its --task-seed defaults to 0 too).
const task = defaultTask({ numAgents, seed: integer('task-seed', 0) });
const page = await serveBrowserAgentPage({
  natsWsUrl: values['nats-ws'],
  jobId: values['job-id'],
  agentId: values['agent-id'] ?? `browser-${agentIndex}`,
  dataSeed: agentIndex,
  prepared: await loadDefaultModel(),
  data: task.agents[agentIndex],
  host: values.host,
  port: integer('port', 0),
});
console.log(`browser agent ${values['agent-id'] ?? `browser-${agentIndex}`} served at ${page.url}`);
process.once('SIGINT', () => void page.close().then(() => process.exit(0)));
