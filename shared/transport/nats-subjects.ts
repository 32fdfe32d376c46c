/**
 * The NATS subject tree of one job (docs/protocol.md, "NATS"). Every subject of a job sits under
 * `<prefix>.<job>`, and every subject an agent may use embeds its agent id, so server permissions can bind a
 * NATS user to one agent (nats-auth.ts):
 *
 *   <root>.rpc.<agent>.<method>   request/reply, agent → coordinator: join, fetchlog, snapshot, session (open)
 *   <root>.up.<agent>.<session>   agent → coordinator, one Session: AgentMessage (result, heartbeat, pong), end
 *   <root>.down.<agent>.<session> coordinator → agent, one Session: CoordinatorMessage (task, ping, update), end
 *   <root>.updates                coordinator → every agent: each committed update, published once
 *   <root>.health                 request/reply: SERVING | NOT_SERVING
 *   <root>.log.header|entry       the JetStream log stream's subjects (written by the coordinator only)
 *   _INBOX.<job>.<agent>.>        the agent's reply inbox (nats.js `inboxPrefix`)
 */

export const DEFAULT_SUBJECT_PREFIX = 'mezo';

export const RPC_METHODS = ['join', 'fetchlog', 'snapshot', 'session'] as const;
export type RpcMethod = (typeof RPC_METHODS)[number];

/** Header names of the NATS transport (NATS headers are case-sensitive on the wire; nats.js keeps them as given). */
export const NATS_HEADERS = {
  /**
   * Formerly the app-level token in clear on every request. The token no longer travels over NATS (requests carry
   * a proof of it: nats-proof.ts), and a coordinator ignores this header.
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

const JOB_ID = /^[A-Za-z0-9._-]{1,128}$/;
const AGENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const SESSION_ID = /^[A-Za-z0-9]{1,64}$/;

/**
 * An id as one subject token. '.' separates tokens in NATS, so it is written '~', which neither job nor agent
 * ids may contain; the mapping is one-to-one.
 */
export function subjectToken(id: string): string {
  return id.replaceAll('.', '~');
}

export function fromSubjectToken(token: string): string {
  return token.replaceAll('~', '.');
}

export function isSessionId(value: string): boolean {
  return SESSION_ID.test(value);
}

export interface JobSubjects {
  readonly jobId: string;
  readonly prefix: string;
  /** `<prefix>.<job>` */
  readonly root: string;
  /** The JetStream stream holding the job's update log. */
  readonly stream: string;
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
  readonly logHeader: string;
  readonly logEntry: string;
  readonly logAll: string;
  /** The reply-inbox prefix of an agent's own connection. */
  inboxPrefix(agentId: string): string;
  /** Splits `<root>.<kind>.<agent>.<last>`; undefined when the subject is not of that shape. */
  parse(subject: string, kind: 'rpc' | 'up' | 'down'): { agentId: string; last: string } | undefined;
}

/** The JetStream stream name of a job's log: `<prefix>-log-<job>` with '.' written '~' (stream names hold no dots). */
export function logStreamName(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): string {
  return `${subjectToken(prefix)}-log-${subjectToken(jobId)}`;
}

export function jobSubjects(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): JobSubjects {
  if (!JOB_ID.test(jobId)) throw new RangeError(`nats subjects: job id must be 1-128 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(jobId)}`);
  if (!PREFIX.test(prefix)) throw new RangeError(`nats subjects: prefix must be dot-separated tokens of A-Z a-z 0-9 _ -, got ${JSON.stringify(prefix)}`);
  const root = `${prefix}.${subjectToken(jobId)}`;
  const depth = root.split('.').length;
  const agent = (agentId: string): string => {
    if (!AGENT_ID.test(agentId)) throw new RangeError(`nats subjects: agent id must be 1-128 characters of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(agentId)}`);
    return subjectToken(agentId);
  };
  return {
    jobId,
    prefix,
    root,
    stream: logStreamName(jobId, prefix),
    rpc: (agentId, method) => `${root}.rpc.${agent(agentId)}.${method}`,
    rpcAll: `${root}.rpc.*.*`,
    up: (agentId, sessionId) => `${root}.up.${agent(agentId)}.${sessionId}`,
    upAll: `${root}.up.*.*`,
    down: (agentId, sessionId) => `${root}.down.${agent(agentId)}.${sessionId}`,
    downOf: (agentId) => `${root}.down.${agent(agentId)}.*`,
    downAll: `${root}.down.*.*`,
    updates: `${root}.updates`,
    health: `${root}.health`,
    logHeader: `${root}.log.header`,
    logEntry: `${root}.log.entry`,
    logAll: `${root}.log.>`,
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
