/**
 * The NATS subject tree of one job (docs/protocol.md, "NATS"). Every subject of a job sits under
 * `<prefix>.<job>`, and every subject an agent may use embeds its agent id, so server permissions can bind a
 * NATS user to one agent (auth.ts):
 *
 *   <root>.rpc.<agent>.<method>   request/reply, agent → coordinator: join, fetchlog, snapshot, session (open)
 *   <root>.up.<agent>.<session>   agent → coordinator, one Session: AgentMessage (result, heartbeat, pong), end
 *   <root>.down.<agent>.<session> coordinator → agent, one Session: CoordinatorMessage (task, ping, update), end
 *   <root>.updates                coordinator → every agent: each committed update, published once
 *   <root>.health                 request/reply: SERVING | NOT_SERVING
 *   <root>.log.header|entry       the JetStream log stream's subjects (written by the coordinator only)
 *   _INBOX.<job>.<agent>.>        the agent's reply inbox (nats.js `inboxPrefix`)
 *
 * The root, the id-to-token mapping and the log stream's names are shared with the update log
 * (../../nats-names.ts).
 */
import { DEFAULT_SUBJECT_PREFIX, fromSubjectToken, logStreamSubjects, subjectToken, type LogStreamSubjects } from '../../nats-names.js';

export { DEFAULT_SUBJECT_PREFIX, fromSubjectToken, logStreamName, subjectToken } from '../../nats-names.js';

export const RPC_METHODS = ['join', 'fetchlog', 'snapshot', 'session'] as const;
export type RpcMethod = (typeof RPC_METHODS)[number];

/** Header names of the NATS transport (NATS headers are case-sensitive on the wire; nats.js keeps them as given). */
export const NATS_HEADERS = {
  /**
   * Formerly the app-level token in clear on every request. The token no longer travels over NATS (requests carry
   * a proof of it: proof.ts), and a coordinator ignores this header.
   */
  token: 'Mezo-Token',
  /** The session id on a Session open request. */
  session: 'Mezo-Session',
  /** A status name (errors.ts) on a reply or an end-of-session message; absent or OK means success. */
  status: 'Mezo-Status',
  message: 'Mezo-Message',
  /** 'end' (a Session is over) or 'cancel' (a snapshot transfer is abandoned). */
  control: 'Mezo-Control',
  /** A snapshot transfer id, and whether more pieces follow ('1') or not ('0'). */
  transfer: 'Mezo-Transfer',
  more: 'Mezo-More',
} as const;

const AGENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SESSION_ID = /^[A-Za-z0-9]{1,64}$/;

export function isSessionId(value: string): boolean {
  return SESSION_ID.test(value);
}

export interface JobSubjects extends LogStreamSubjects {
  rpc(agentId: string, method: RpcMethod): string;
  /** What the coordinator subscribes to for every agent's requests. */
  readonly rpcAll: string;
  up(agentId: string, sessionId: string): string;
  readonly upAll: string;
  down(agentId: string, sessionId: string): string;
  /** One agent's downlink, all its sessions. */
  downOf(agentId: string): string;
  /** Every agent's downlink (a connection shared by many agents). */
  readonly downAll: string;
  readonly updates: string;
  readonly health: string;
  /** The reply-inbox prefix of an agent's own connection. */
  inboxPrefix(agentId: string): string;
  /** Splits `<root>.<kind>.<agent>.<last>`; undefined when the subject is not of that shape. */
  parse(subject: string, kind: 'rpc' | 'up' | 'down'): { agentId: string; last: string } | undefined;
}

export function jobSubjects(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): JobSubjects {
  const log = logStreamSubjects(jobId, prefix);
  const root = log.root;
  const depth = root.split('.').length;
  const agent = (agentId: string): string => {
    if (!AGENT_ID.test(agentId)) throw new RangeError(`nats subjects: agent id must be 1-128 characters of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(agentId)}`);
    return subjectToken(agentId);
  };
  return {
    ...log,
    rpc: (agentId, method) => `${root}.rpc.${agent(agentId)}.${method}`,
    rpcAll: `${root}.rpc.*.*`,
    up: (agentId, sessionId) => `${root}.up.${agent(agentId)}.${sessionId}`,
    upAll: `${root}.up.*.*`,
    down: (agentId, sessionId) => `${root}.down.${agent(agentId)}.${sessionId}`,
    downOf: (agentId) => `${root}.down.${agent(agentId)}.*`,
    downAll: `${root}.down.*.*`,
    updates: `${root}.updates`,
    health: `${root}.health`,
    inboxPrefix: (agentId) => `_INBOX.${subjectToken(jobId)}.${agent(agentId)}`,
    parse: (subject, kind) => {
      const tokens = subject.split('.');
      if (tokens.length !== depth + 3 || tokens[depth] !== kind) return undefined;
      const agentId = fromSubjectToken(tokens[depth + 1]!);
      if (!AGENT_ID.test(agentId)) return undefined;
      return { agentId, last: tokens[depth + 2]! };
    },
  };
}
