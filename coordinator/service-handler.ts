/**
 * The coordinator's side of the Transport: Join, FetchLog, FetchSnapshot and the agents' sessions. It checks
 * credentials and message budgets (agent registry) and routes what arrives: results to the validator,
 * declines and secure-aggregation messages to the round loop, heartbeats into the agent's record (audited
 * against the replica's weights hashes).
 */
import type { UpdateLog } from '../shared/log/index.js';
import { logger } from '../shared/logger.js';
import {
  MAX_ENTRIES_PER_PAGE,
  TransportError,
  type AgentMessage,
  type CallInfo,
  type CoordinatorHandler,
  type FetchLogRequest,
  type FetchLogResponse,
  type FetchSnapshotRequest,
  type Heartbeat,
  type JoinAccepted,
  type JoinRequest,
  type ServerSession,
  type SnapshotChunk,
} from '../shared/transport/index.js';
import type { ServiceHealth } from '../shared/transport/health.js';
import type { AgentRecord, AgentRegistry } from './agent-registry.js';
import type { Broadcaster } from './broadcaster.js';
import type { RoundOptions } from './options.js';
import type { Replica } from './replica.js';
import { reject, type ResultValidator } from './result-validator.js';
import type { RoundLoop } from './round-loop.js';

export interface ServiceHandlerInit {
  log: UpdateLog;
  options: RoundOptions;
  health: ServiceHealth;
  agents: AgentRegistry;
  replica: Replica;
  broadcaster: Broadcaster;
  loop: RoundLoop;
  validator: ResultValidator;
}

export function serviceHandler(init: ServiceHandlerInit): CoordinatorHandler {
  const { log, options, agents, replica, broadcaster, loop, validator } = init;

  /** Whether a message costs no budget: the answer to what the round asked, or the pong to our latest ping. */
  const solicited = (agent: AgentRecord, message: AgentMessage): boolean => loop.expects(agent.id, message) || agents.answersPing(agent, message);

  const onHeartbeat = (agent: AgentRecord, heartbeat: Heartbeat): void => {
    if (heartbeat.busy !== undefined && heartbeat.busy !== (agent.capabilities.busy ?? false)) {
      agent.capabilities = { ...agent.capabilities, busy: heartbeat.busy };
      // An agent free again may be what a waiting round needs.
      if (!heartbeat.busy) agents.notify();
    }
    agent.version = heartbeat.version;
    agent.weightsSha256 = heartbeat.weightsSha256;
    agent.weightsVersion = heartbeat.version;
    const ours = replica.weightsSha256At(heartbeat.version);
    if (ours !== undefined && ours !== heartbeat.weightsSha256) {
      agent.stats.divergent++;
      logger.warn({ agent: agent.id, version: heartbeat.version }, 'agent weights differ from the log materialisation');
    }
  };

  return {
    health: init.health,
    secretOf: (agentId: string): string | undefined => agents.secretOf(agentId),

    signStatement: (kind: string, fields: readonly string[]): string | undefined => log.signStatement(kind, fields),

    join: async (request: JoinRequest, peer: string): Promise<JoinAccepted> => {
      if (loop.isStopping) throw new TransportError('UNAVAILABLE', 'the coordinator is shutting down');
      agents.authenticate(request.agentId, request.token, peer);
      const header = log.header;
      if (request.baseSha256 !== header.baseSha256) {
        throw new TransportError('FAILED_PRECONDITION', `join.baseSha256: the job's base is ${header.baseSha256}, the agent holds ${request.baseSha256}`);
      }
      if (request.versionHeld > log.version) {
        throw new TransportError('FAILED_PRECONDITION', `join.versionHeld: ${request.versionHeld} is ahead of the log (version ${log.version})`);
      }
      const agent = agents.admit(request, log.version);
      const jobEnd = loop.endOfJob();
      logger.info({ agent: agent.id, peer, version: request.versionHeld, ...(jobEnd ? { jobEnded: jobEnd.reason } : {}) }, 'agent joined');
      const snapshotVersion = replica.newestSnapshot();
      return {
        jobId: options.jobId,
        distribution: header.distribution,
        ...(header.rank !== undefined ? { rank: header.rank } : {}),
        epsilon: options.epsilon,
        baseSha256: header.baseSha256,
        currentVersion: log.version,
        headHash: log.headHash,
        genesisHash: log.genesisHash,
        decayRanges: header.decayRanges.map(([s, e]): [number, number] => [s, e]),
        heartbeatMs: options.heartbeatMs,
        snapshotVersion,
        snapshotBytes: replica.snapshotBytes(snapshotVersion),
        logBytes: replica.logBytesFrom(request.versionHeld),
        logBytesAfterSnapshot: replica.logBytesFrom(snapshotVersion),
        logFloor: replica.logFloor(),
        rebaseVersion: log.lastRebaseVersion,
        compactEvery: options.compactEvery ?? 0,
        ...(jobEnd ? { jobEnd } : {}),
        ...(log.publicKey ? { logPublicKey: log.publicKey } : {}),
      };
    },

    fetchLog: async (request: FetchLogRequest, info: CallInfo): Promise<FetchLogResponse> => {
      const agent = agents.joined(info);
      if (!agents.spend(agent)) throw agents.overBudget(agent);
      const head = log.version;
      const to = request.toVersion === 0 ? head : request.toVersion;
      if (request.fromVersion > head || to > head) {
        throw new TransportError('OUT_OF_RANGE', `fetchLog: versions ${request.fromVersion}..${to} exceed the head (${head})`);
      }
      const floor = replica.logFloor();
      if (request.fromVersion < floor) {
        throw new TransportError('OUT_OF_RANGE', `fetchLog: entries up to version ${floor} are served only as a snapshot (FetchSnapshot); asked from ${request.fromVersion}`);
      }
      const end = Math.min(to, request.fromVersion + MAX_ENTRIES_PER_PAGE);
      return { entries: log.entries(request.fromVersion, end), headVersion: head };
    },

    fetchSnapshot: async (request: FetchSnapshotRequest, info: CallInfo): Promise<Iterable<SnapshotChunk>> => {
      const agent = agents.joined(info);
      if (!agents.spend(agent)) throw agents.overBudget(agent);
      return replica.snapshotChunks(request);
    },

    session: (session: ServerSession): void => {
      const agent = agents.joined(session.info);
      if (agent.session) agent.session.end(new TransportError('ABORTED', 'replaced by a newer session of the same agent'));
      agent.session = session;
      agent.missedPings = 0;
      // The agent caught up (FetchLog) to the head its Join reported before opening the session; entries
      // committed since then reach it on this session (it skips any it fetched meanwhile).
      agent.sentVersion = Math.min(agent.joinedAtVersion, log.version);
      broadcaster.deliverPending(agent);
      session.listen({
        message: (message: AgentMessage) => {
          if (agent.session !== session) return;
          agent.missedPings = 0;
          // The result of an open assignment costs no budget: a fast agent in fast rounds is not flooding.
          // Everything else — heartbeats, pongs, extra or stray results — does.
          if (!solicited(agent, message) && !agents.spend(agent)) {
            logger.warn({ agent: agent.id }, 'agent over its message budget; ending its session');
            session.end(agents.overBudget(agent));
            return;
          }
          switch (message.kind) {
            case 'result':
              validator.take(agent, message.result, loop.openRound, loop.nextRound);
              break;
            case 'decline':
              loop.onDecline(agent, message.decline);
              break;
            case 'secAggKeys':
            case 'secAggShares':
            case 'secAggMaskedInput':
            case 'secAggReveal':
              loop.onSecureMessage(agent, message);
              break;
            case 'heartbeat':
              onHeartbeat(agent, message.heartbeat);
              break;
            case 'pong':
              break;
          }
        },
        invalid: (error) => {
          if (agent.session !== session) return;
          reject(agent, 'invalid-message', error.message);
          if (!agents.spend(agent)) session.end(agents.overBudget(agent));
        },
        closed: (error) => {
          if (agent.session !== session) return;
          agent.session = undefined;
          logger.info({ agent: agent.id, reason: error?.message }, 'agent session closed');
          loop.onSessionClosed(agent.id);
          agents.notify();
        },
      });
      // A session opened after the end (its agent joined just before) hears it at once.
      broadcaster.sendJobEnd(agent);
      agents.notify();
    },
  };
}
