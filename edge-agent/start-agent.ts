/**
 * The agent as a library call: `startAgent(options)` builds an Agent (agent.ts) and starts it at once — join,
 * catch up, evaluate tasks, follow the log, reconnect — and hands back a handle to stop and await it. It
 * installs no signal handlers and writes nothing of its own (the structured logger is the only output).
 * `mezo agent` and `mezo simulate`'s virtual agents start theirs here too, so the agent is wired in one place:
 * what they add (a device budget, evaluation middleware such as the simulation's faults, a backend factory
 * handing out shared replica views, data built on first use) are AgentInit's own options.
 */
import { Agent, type AgentExit, type AgentHealth, type AgentInit, type AgentState } from './agent.js';
import { checkMiddleware } from './evaluation.js';
import type { MezoBackend } from './mezo-backend.js';

export type StartAgentOptions = AgentInit;

export interface AgentHandle {
  /** The Agent itself, for what the handle does not wrap. */
  readonly agent: Agent;
  /** Version held, head hash, tasks done, reconnects, catch-ups and rejections so far. */
  readonly state: AgentState;
  /** The model backend once the agent joined a job (its weights: `await backend.sha256()`). */
  readonly backend: MezoBackend | undefined;
  /** Why it ended, once it has. */
  readonly exit: AgentExit | undefined;
  /** Liveness and readiness, with the reason it is not ready (what edge-agent/health-server.ts serves). */
  readonly health: AgentHealth;
  /**
   * Resolves when the agent is done: the job ended (onJobEnd 'leave') or stop() was called; rejects on what a
   * reconnect cannot fix (bad token, wrong base, a broken chain, giveUpAfterMs without a coordinator).
   */
  waitForEnd(): Promise<void>;
  /** Ends the session and the reconnect loop; waitForEnd() resolves once the work in hand is done. */
  stop(): void;
  /** stop(), wait for the end, release the model and the log replica. */
  close(): Promise<void>;
}

export function startAgent(options: StartAgentOptions): AgentHandle {
  if (typeof options !== 'object' || options === null) throw new TypeError('startAgent: options must be an object');
  if (typeof options.agentId !== 'string' || options.agentId === '') throw new TypeError('startAgent: options.agentId must be a non-empty string');
  const transport = options.transport as unknown;
  if (typeof transport !== 'object' || transport === null || typeof (transport as { connect?: unknown }).connect !== 'function') {
    throw new TypeError('startAgent: options.transport must be a Transport');
  }
  if (typeof options.createBackend !== 'function') throw new TypeError('startAgent: options.createBackend must be a function (distribution, rank?) => Promise<MezoBackend>');
  if (typeof options.prepared !== 'object' || options.prepared === null) throw new TypeError('startAgent: options.prepared must be a PreparedModel');
  if (options.data === undefined || options.data === null) throw new TypeError('startAgent: options.data must be a LocalDataset or a function returning one');
  checkMiddleware(options.evaluation, 'startAgent: options.evaluation');
  const agent = new Agent(options);
  const running = agent.run();
  // Observed through waitForEnd(); an early failure must not surface as an unhandled rejection meanwhile.
  running.catch(() => undefined);
  return {
    agent,
    get state() {
      return agent.state;
    },
    get backend() {
      return agent.backend;
    },
    get exit() {
      return agent.exit;
    },
    get health() {
      return agent.health;
    },
    waitForEnd: () => running,
    stop: () => agent.stop(),
    close: () => agent.close(),
  };
}
