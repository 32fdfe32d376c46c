/**
 * Access control for a job on a NATS server: a generator of the nats-server `accounts` block that confines
 * each agent's NATS user to its own subjects (subjects.ts). With it, an agent can publish only its own
 * requests, session uplink and the job's health check, subscribe only to its own downlink, the job's broadcast
 * and its own reply inbox, and read — never write — the job's log stream; the coordinator's user has every
 * right on the job. Tokens are one server-wide secret in NATS (no per-user permissions), so agent isolation
 * needs users or nkeys. Opening a connection with those credentials is connect.ts.
 */
import { nkeys } from 'nats';
import { NatsConfigError } from './connect.js';
import { DEFAULT_SUBJECT_PREFIX, jobSubjects } from './subjects.js';

/** A fresh nkey user: the seed the client keeps secret and the public key the server configuration lists. */
export function createNatsUserNkey(): { seed: string; publicKey: string } {
  const pair = (nkeys as { createUser(): { getSeed(): Uint8Array; getPublicKey(): string } }).createUser();
  return { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
}

/** Subjects a NATS user may publish to and subscribe to. */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** What one agent's user may do: its own subjects, the broadcast, its inbox, and reading the log stream. */
export function agentPermissions(jobId: string, agentId: string, prefix = DEFAULT_SUBJECT_PREFIX): NatsPermissions {
  const s = jobSubjects(jobId, prefix);
  const rpc = s.rpc(agentId, 'join');
  const up = s.up(agentId, 'x');
  return {
    publish: [
      `${rpc.slice(0, rpc.lastIndexOf('.'))}.*`,
      `${up.slice(0, up.lastIndexOf('.'))}.*`,
      s.health,
      // Direct gets read single messages by sequence (or the last entry); they cannot change the stream.
      `$JS.API.DIRECT.GET.${s.stream}`,
      `$JS.API.DIRECT.GET.${s.stream}.>`,
    ],
    subscribe: [s.downOf(agentId), s.updates, `${s.inboxPrefix(agentId)}.>`],
  };
}

/** The coordinator's user: every subject of the job, the JetStream API of its account, and replies to any inbox. */
export function coordinatorPermissions(jobId: string, prefix = DEFAULT_SUBJECT_PREFIX): NatsPermissions {
  const s = jobSubjects(jobId, prefix);
  return { publish: [`${s.root}.>`, '$JS.API.>', '_INBOX.>'], subscribe: [`${s.root}.>`, '_INBOX.>'] };
}

/** A user entry of the server configuration: a user name and password, or an nkey's public key. */
export type NatsUserCredential = { user: string; password: string } | { nkey: string };

export interface JobAuthConfig {
  jobId: string;
  subjectPrefix?: string;
  /** The account holding the job (default `mezo-<job>`): its JetStream API and subjects are the job's alone. */
  account?: string;
  /** JetStream for the account (the log stream); default true. */
  jetstream?: boolean;
  coordinator: NatsUserCredential | NatsUserCredential[];
  agents: Array<{ agentId: string; credential: NatsUserCredential }>;
}

/**
 * The nats-server configuration block (`accounts { … }`) for one job: an account of its own, the coordinator's
 * user(s) with full rights on the job, and one confined user per agent. Append it to the server's configuration
 * (it is JSON, which the server's configuration syntax accepts).
 */
export function natsJobAuthConfig(config: JobAuthConfig): string {
  const prefix = config.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const entry = (credential: NatsUserCredential, permissions: NatsPermissions): Record<string, unknown> => {
    const who = 'nkey' in credential ? { nkey: credential.nkey } : { user: credential.user, password: credential.password };
    return { ...who, permissions: { publish: { allow: permissions.publish }, subscribe: { allow: permissions.subscribe } } };
  };
  const seen = new Set<string>();
  for (const { agentId } of config.agents) {
    if (seen.has(agentId)) throw new NatsConfigError(`natsJobAuthConfig: agent ${agentId} is listed twice`);
    seen.add(agentId);
  }
  const coordinators = Array.isArray(config.coordinator) ? config.coordinator : [config.coordinator];
  const account = {
    ...(config.jetstream === false ? {} : { jetstream: 'enabled' }),
    users: [
      ...coordinators.map((c) => entry(c, coordinatorPermissions(config.jobId, prefix))),
      ...config.agents.map((a) => entry(a.credential, agentPermissions(config.jobId, a.agentId, prefix))),
    ],
  };
  return `accounts: ${JSON.stringify({ [config.account ?? `mezo-${config.jobId}`]: account }, null, 2)}\n`;
}
