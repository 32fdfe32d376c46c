/**
 * The agents a coordinator knows: their credentials (per-agent or shared tokens, revocation, failed
 * authentications limited per peer address), their records (session, capabilities, the version they hold,
 * their stats), the per-agent token-bucket message budget, liveness pings, and waiting for enough of them to
 * be free for a round.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { logger } from '../shared/logger.js';
import { TransportError, type AgentMessage, type Capabilities, type CallInfo, type JoinRequest, type ServerSession } from '../shared/transport/index.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import type { RoundOptions } from './options.js';
import type { RejectionReason } from './result-validator.js';

export interface AgentStats {
  /** Tasks sent. */
  tasks: number;
  /** Results used in a round. */
  accepted: number;
  /** Results that came after their round closed (dropped). */
  late: number;
  /** Tasks whose agent disconnected before answering. */
  dropped: number;
  /** Results (or messages) rejected, in total and by reason. */
  rejected: number;
  rejections: Partial<Record<RejectionReason, number>>;
  /** Heartbeats whose weights hash differed from the coordinator's at the same version. */
  divergent: number;
  /** Calls refused and sessions ended because the agent exceeded its message budget (options.rateLimit). */
  rateLimited: number;
  /** Tasks the agent declined (its device busy, or the batch over its memory budget): not faults. */
  declined: number;
}

export interface AgentStatus {
  id: string;
  connected: boolean;
  capabilities: Capabilities;
  /** Newest version the agent is known to hold (join, heartbeat, or a task it answered at that version). */
  version: number;
  /** The weights hash of the last heartbeat, and the version it was computed at. */
  weightsSha256: string | undefined;
  weightsVersion: number | undefined;
  stats: AgentStats;
}

export interface AgentRecord {
  id: string;
  token: string;
  capabilities: Capabilities;
  session: ServerSession | undefined;
  version: number;
  weightsSha256: string | undefined;
  weightsVersion: number | undefined;
  /**
   * Pings sent since the agent's last message. Liveness is counted in the coordinator's own heartbeat ticks,
   * not in wall time: a stalled coordinator (starved of CPU, collecting garbage, busy on its thread) fires one
   * late tick and reads the agents' pending messages only after its timers, so wall-clock silence would blame
   * the agents for the coordinator's own stall.
   */
  missedPings: number;
  /** Nonce of the last ping sent and not yet answered: its pong is solicited, so it costs no message budget. */
  pingNonce?: number;
  stats: AgentStats;
  /** Token bucket of options.rateLimit. */
  budget: { tokens: number; at: number };
  /** Highest log version sent on the current session. */
  sentVersion: number;
  /** The head reported to the agent's last Join: it catches up to there by itself before opening a session. */
  joinedAtVersion: number;
}

const newStats = (): AgentStats => ({ tasks: 0, accepted: 0, late: 0, dropped: 0, rejected: 0, rejections: {}, divergent: 0, rateLimited: 0, declined: 0 });

/** Compares secrets in time independent of where they differ (digests first, so lengths leak nothing either). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

type RegistryOptions = Pick<RoundOptions, 'tokens' | 'token' | 'authFailureLimit' | 'rateLimit' | 'maxAgents'>;

export class AgentRegistry {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly revoked = new Set<string>();
  private readonly authLimiter: AuthFailureLimiter;
  private authFailed = 0;
  private nonce = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: RegistryOptions) {
    this.authLimiter = new AuthFailureLimiter(options.authFailureLimit);
  }

  get(agentId: string): AgentRecord | undefined {
    return this.agents.get(agentId);
  }

  /** Every agent that ever joined, connected or not. */
  all(): IterableIterator<AgentRecord> {
    return this.agents.values();
  }

  // ---- credentials ----

  /**
   * Checks an agent's credentials: its own token when options.tokens lists it, else the shared token when one
   * is set; with per-agent tokens and no shared token, an unlisted agent is refused. Revoked agents never pass.
   */
  authenticate(agentId: string, token: string, peer: string): void {
    // Over its failure budget, a peer is refused unheard: no token comparison, no state, no log line.
    if (!this.authLimiter.allows(peer)) throw new TransportError('RESOURCE_EXHAUSTED', 'too many failed authentications from this address; retry later');
    try {
      this.checkCredentials(agentId, token);
    } catch (err) {
      this.authFailed++;
      this.authLimiter.failed(peer);
      throw err;
    }
    this.authLimiter.succeeded(peer);
  }

  private checkCredentials(agentId: string, token: string): void {
    if (this.revoked.has(agentId)) throw new TransportError('PERMISSION_DENIED', `agent ${agentId}: credentials revoked`);
    const { tokens, token: shared } = this.options;
    if (Object.hasOwn(tokens, agentId)) {
      if (!sameSecret(token, tokens[agentId]!)) throw new TransportError('UNAUTHENTICATED', `agent ${agentId}: bad token`);
    } else if (shared !== '') {
      if (!sameSecret(token, shared)) throw new TransportError('UNAUTHENTICATED', `agent ${agentId}: bad token`);
    } else if (Object.keys(tokens).length > 0) {
      throw new TransportError('PERMISSION_DENIED', `agent ${agentId} is not registered for this job`);
    }
  }

  /** The secret an agent's token must be (for transports that prove possession of it), or undefined when none is set. */
  secretOf(agentId: string): string | undefined {
    const { tokens, token } = this.options;
    if (Object.hasOwn(tokens, agentId)) return tokens[agentId];
    return token === '' ? undefined : token;
  }

  /** The record of an agent calling after its Join, with the same token; throws a TransportError otherwise. */
  joined(info: CallInfo): AgentRecord {
    this.authenticate(info.agentId, info.token, info.peer);
    const agent = this.agents.get(info.agentId);
    if (!agent) throw new TransportError('FAILED_PRECONDITION', `agent ${info.agentId} has not joined`);
    if (!sameSecret(info.token, agent.token)) {
      this.authFailed++;
      this.authLimiter.failed(info.peer);
      throw new TransportError('UNAUTHENTICATED', `agent ${info.agentId}: token differs from the one it joined with`);
    }
    return agent;
  }

  /**
   * An authenticated Join: a known agent spends one message of its budget, a new one gets a record (while the
   * job has room for it). Either way the record takes the Join's token, capabilities and version held, and
   * `headVersion`, the head the Join reports.
   */
  admit(request: JoinRequest, headVersion: number): AgentRecord {
    let agent = this.agents.get(request.agentId);
    if (agent && !this.spend(agent)) throw this.overBudget(agent);
    if (!agent) {
      if (this.agents.size >= this.options.maxAgents) throw new TransportError('RESOURCE_EXHAUSTED', `the job already has ${this.options.maxAgents} agents`);
      agent = { id: request.agentId, token: request.token, capabilities: request.capabilities, session: undefined, version: 0, weightsSha256: undefined, weightsVersion: undefined, missedPings: 0, stats: newStats(), budget: { tokens: this.options.rateLimit.burst, at: performance.now() }, sentVersion: 0, joinedAtVersion: 0 };
      this.agents.set(agent.id, agent);
    }
    agent.token = request.token;
    agent.capabilities = request.capabilities;
    agent.version = request.versionHeld;
    agent.joinedAtVersion = headVersion;
    return agent;
  }

  /**
   * Revokes an agent's credentials: its session ends with PERMISSION_DENIED and every later Join, Session or
   * FetchLog of that id is refused, whatever token it presents.
   */
  revoke(agentId: string): void {
    this.revoked.add(agentId);
    const agent = this.agents.get(agentId);
    agent?.session?.end(new TransportError('PERMISSION_DENIED', `agent ${agentId}: credentials revoked`));
    logger.warn({ agent: agentId }, 'agent credentials revoked');
  }

  /** Failed authentications in total, calls refused unheard by the per-peer limit, and the peers it tracks. */
  authFailures(): { failed: number; limited: number; peersTracked: number } {
    return { failed: this.authFailed, limited: this.authLimiter.refused, peersTracked: this.authLimiter.size };
  }

  // ---- the message budget ----

  /** Takes one message from the agent's budget; false (and counted) when it is spent. */
  spend(agent: AgentRecord): boolean {
    const { perSecond, burst } = this.options.rateLimit;
    if (perSecond === 0) return true;
    const now = performance.now();
    const budget = agent.budget;
    budget.tokens = Math.min(burst, budget.tokens + ((now - budget.at) / 1000) * perSecond);
    budget.at = now;
    if (budget.tokens < 1) {
      agent.stats.rateLimited++;
      return false;
    }
    budget.tokens -= 1;
    return true;
  }

  overBudget(agent: AgentRecord): TransportError {
    const { perSecond, burst } = this.options.rateLimit;
    return new TransportError('RESOURCE_EXHAUSTED', `agent ${agent.id}: over its message budget (${perSecond}/s, burst ${burst})`);
  }

  // ---- liveness ----

  /** One heartbeat tick: ends the sessions of agents silent for 5 ticks, pings the rest. */
  pingAll(): void {
    for (const agent of this.agents.values()) {
      if (!agent.session) continue;
      if (agent.missedPings >= 5) {
        logger.warn({ agent: agent.id }, 'agent silent for 5 heartbeat periods; closing its session');
        agent.session.end(new TransportError('DEADLINE_EXCEEDED', 'no message from the agent for 5 heartbeat periods'));
      } else {
        agent.missedPings++;
        agent.pingNonce = ++this.nonce;
        agent.session.send({ kind: 'ping', nonce: agent.pingNonce });
      }
    }
  }

  /**
   * Whether `message` is the pong to the agent's latest ping. The answer to our latest ping is ours to pay for:
   * an agent that answers every heartbeat must not run out of budget when the coordinator's ticks outpace the
   * refill. One free pong per ping, so pongs cannot flood.
   */
  answersPing(agent: AgentRecord, message: AgentMessage): boolean {
    if (message.kind !== 'pong' || agent.pingNonce === undefined || message.nonce !== agent.pingNonce) return false;
    agent.pingNonce = undefined;
    return true;
  }

  // ---- who is there ----

  agentStatus(id: string): AgentStatus | undefined {
    const a = this.agents.get(id);
    if (!a) return undefined;
    return {
      id: a.id,
      connected: a.session !== undefined,
      capabilities: { ...a.capabilities },
      version: a.version,
      weightsSha256: a.weightsSha256,
      weightsVersion: a.weightsVersion,
      // A copy (callers may keep it), made field by field: monitors read every agent's status each round.
      stats: { ...a.stats, rejections: { ...a.stats.rejections } },
    };
  }

  agentStatuses(): AgentStatus[] {
    return [...this.agents.keys()].sort().map((id) => this.agentStatus(id)!);
  }

  connectedAgents(): string[] {
    return [...this.agents.values()].filter((a) => a.session).map((a) => a.id).sort();
  }

  /** Something a waiting round may need changed (a session opened or closed, an agent became free, a stop). */
  notify(): void {
    const waiting = this.waiters;
    this.waiters = [];
    waiting.forEach((wake) => wake());
  }

  /** Connected agents that are not busy, once at least `count` are (or when timeoutMs passes, or once `stopped()`). */
  async waitForAvailable(count: number, timeoutMs: number, stopped: () => boolean): Promise<AgentRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A busy agent (its device paused) would only decline: wait for agents that can take a task.
      const connected = [...this.agents.values()].filter((a) => a.session && !a.capabilities.busy);
      const left = deadline - Date.now();
      if (connected.length >= count || left <= 0 || stopped()) return connected;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
