/**
 * The agent's connection to its coordinator: connect, hand the client to one attempt (join, catch up, serve),
 * and when that ends or fails, reconnect with exponential backoff and jitter, until the agent stops, the attempt
 * says the agent is done, an error no reconnect can fix is rethrown, or no coordinator has answered for
 * giveUpAfterMs.
 */
import { logger } from '../shared/logger.js';
import type { CoordinatorClient, Transport } from '../shared/transport/index.js';

/** No coordinator answered a Join for AgentInit.giveUpAfterMs; `cause` is the last connection error. */
export class CoordinatorUnreachableError extends Error {
  override name = 'CoordinatorUnreachableError';
}

/** First reconnect delay and its cap, ms (defaults 200 and 10,000). */
export interface ReconnectOptions {
  initialMs?: number;
  maxMs?: number;
}

/** min(max, initial·2ⁿ), scaled by a random factor in [0.5, 1) so a fleet does not reconnect in lockstep. */
export function backoffDelay(failures: number, reconnect: ReconnectOptions | undefined): number {
  const initial = reconnect?.initialMs ?? 200;
  const max = reconnect?.maxMs ?? 10_000;
  return Math.min(max, initial * 2 ** Math.min(failures, 30)) * (0.5 + 0.5 * Math.random());
}

/** What an attempt tells the connection as it goes. */
export interface ConnectionProgress {
  /** The coordinator answered (a Join, or the end of a session): giveUpAfterMs counts from now. */
  reached(): void;
  /** A Join and its catch-up succeeded: the backoff starts over. */
  joined(): void;
}

export interface ConnectionInit {
  agentId: string;
  token: string | undefined;
  transport: Transport;
  reconnect: ReconnectOptions | undefined;
  giveUpAfterMs: number | undefined;
  /** True once the agent was asked to stop. */
  stopped(): boolean;
  /** One connection's work; resolves true when the agent is done (it leaves), false to connect again. */
  attempt(client: CoordinatorClient, progress: ConnectionProgress): Promise<boolean>;
  /** An attempt failed: rethrows what a reconnect cannot fix, else prepares the next attempt. */
  recover(error: unknown): Promise<void>;
}

export class Connection {
  /** Connections lost and tried again. */
  reconnects = 0;
  private wakeSleep: (() => void) | undefined;

  constructor(private readonly init: ConnectionInit) {}

  /** Cuts a backoff wait short (the agent is stopping). */
  wake(): void {
    this.wakeSleep?.();
  }

  /** Runs attempts until one says the agent is done ('done') or the agent stops ('stopped'). */
  async run(): Promise<'done' | 'stopped'> {
    const init = this.init;
    let failures = 0;
    let reachedAt = Date.now();
    let lastError: Error | undefined;
    const progress: ConnectionProgress = {
      reached: () => {
        reachedAt = Date.now();
      },
      joined: () => {
        failures = 0;
      },
    };
    while (!init.stopped()) {
      const client = init.transport.connect({ agentId: init.agentId, token: init.token ?? '' });
      try {
        if (await init.attempt(client, progress)) return 'done';
      } catch (err) {
        await init.recover(err);
        logger.warn({ agent: init.agentId, err: (err as Error).message }, 'connection to the coordinator lost');
        lastError = err as Error;
      } finally {
        client.close();
      }
      if (init.stopped()) break;
      this.reconnects++;
      const giveUpAfterMs = init.giveUpAfterMs;
      const unreachableMs = Date.now() - reachedAt;
      if (giveUpAfterMs !== undefined && unreachableMs >= giveUpAfterMs) {
        const last = lastError ? `; last error: ${lastError.message}` : '';
        const error = new CoordinatorUnreachableError(`no coordinator reached for ${unreachableMs} ms (giving up after ${giveUpAfterMs} ms)${last}`, { cause: lastError });
        logger.error({ agent: init.agentId, err: error.message }, 'agent stopped: coordinator unreachable');
        throw error;
      }
      const delay = backoffDelay(failures++, init.reconnect);
      await this.sleep(giveUpAfterMs === undefined ? delay : Math.min(delay, giveUpAfterMs - unreachableMs));
    }
    return 'stopped';
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
