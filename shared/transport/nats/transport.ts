/**
 * The NATS Transport: the coordinator and its agents talk over a job's subject tree (subjects.ts) with the
 * same protobuf messages as gRPC (../codecs.ts). docs/protocol.md ("NATS") has the whole design; in short:
 *
 * - Join, FetchLog and FetchSnapshot are requests with a deadline on `rpc.<agent>.<method>`; the app-level token
 *   never travels: each request carries a proof of it (an HMAC, proof.ts), and a failure comes back as a
 *   reply with a Mezo-Status header (a status name of errors.ts; wire.ts). A snapshot is pulled piece by piece.
 * - A Session is emulated: the agent opens it with a request on `rpc.<agent>.session` naming a fresh session id
 *   (the handler may refuse it); then messages flow in order on `up.<agent>.<session>` and
 *   `down.<agent>.<session>`, and either side ends it with an `end` message carrying a status. With a token,
 *   the open fixes a session key and every session message, either way, carries a sequence number and a MAC
 *   under it; each end drops messages whose MAC or sequence number does not check out (counted: forged() on
 *   the coordinator, forgedDownlink() on an agent's transport). A restarted coordinator, which no longer has
 *   the key, signs its end of a session it does not know with the update log's key.
 * - A committed update sent to many sessions as one message object is published once on `updates`; every
 *   agent connection receives it once and hands it to each of its sessions.
 * - Liveness: the agent side ends a session with UNAVAILABLE when nothing arrives on it for `livenessPeriods`
 *   heartbeat periods (the coordinator pings every period), when its connection closes or drops, or when a
 *   coordinator that does not know the session (it restarted) says so in reply to its uplink.
 *
 * A NatsTransport either owns its connections (servers, credentials, TLS: one connection per listen() and per
 * connect(), closed with them, opened by `connect` — TCP by default, any nats.js-compatible link such as
 * nats.ws injected) or uses one it is given (`connection`), which many clients — thousands of virtual agents —
 * can share: per connection and job there is one subscription for the broadcast and one wildcard subscription
 * for every agent's downlink, demultiplexed locally by agent and session id.
 *
 * The rooms: listener.ts + server-session.ts (coordinator side), client.ts + client-session.ts + client-hub.ts
 * (agent side), stream-reads.ts (FetchLog from JetStream), wire.ts (statuses, sizes, pieces), subjects.ts,
 * proof.ts, connect.ts and auth.ts.
 */
import { Empty, type NatsConnection } from 'nats';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../messages.js';
import type { AgentCredentials, CoordinatorClient, CoordinatorHandler, HealthStatus, Listener, Transport } from '../transport.js';
import { NatsCoordinatorClient, type DownlinkCounters } from './client.js';
import { connectNats, type NatsAuth, type NatsConnectFn, type NatsFileReader, type NatsTlsFiles } from './connect.js';
import { NatsListener } from './listener.js';
import { DEFAULT_SUBJECT_PREFIX, jobSubjects, type JobSubjects } from './subjects.js';
import { asTransportError } from './wire.js';

export interface NatsTransportOptions {
  /** The job whose subject tree this transport uses (agents must know it before they join). */
  jobId: string;
  /** Root of the subject tree (default "mezo"). */
  subjectPrefix?: string;
  /**
   * A connection to use, shared by every listener and client of this transport (and anything else): the
   * transport never closes it. Without it, the transport opens its own from `servers`, `auth` and `tls`.
   */
  connection?: NatsConnection;
  servers?: string | string[];
  auth?: NatsAuth;
  tls?: NatsTlsFiles;
  /**
   * Opens this transport's own connections (default: the `nats` package's TCP connect). A link with the same
   * API — nats.ws's `connect` for a WebSocket — goes here; the protocol code is the same over either.
   */
  connect?: NatsConnectFn;
  /** How this transport's own connections read TLS and nkey seed files (default node:fs). */
  readFile?: NatsFileReader;
  /** Largest encoded message accepted or sent; larger ones fail with RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxMessageBytes?: number;
  /** Deadline of each request (Join, FetchLog, each snapshot piece, Session open), ms. Default 30 s. */
  callTimeoutMs?: number;
  /** Agent side: a session with nothing from the coordinator for this many heartbeat periods is over. Default 5. */
  livenessPeriods?: number;
  /** Agent side: a fixed liveness window (ms) instead of livenessPeriods × the job's heartbeat period. */
  livenessMs?: number;
  /** Agent side: FetchLog reads entries straight from the job's JetStream log stream (the coordinator when that fails). */
  readLogFromStream?: boolean;
  /**
   * Agent side with a given connection: subscribe to each agent's own downlink rather than one wildcard for all
   * (for a connection whose NATS user may read only its own subjects). Own connections always do.
   */
  perAgentDownlink?: boolean;
}

export class NatsTransport implements Transport {
  readonly subjects: JobSubjects;
  private readonly options: NatsTransportOptions;
  private readonly counters: DownlinkCounters = { forged: 0 };

  constructor(options: NatsTransportOptions) {
    if (!options.connection && options.servers === undefined) throw new RangeError('NatsTransport: give a connection or servers');
    if (options.connect !== undefined && typeof options.connect !== 'function') throw new RangeError('NatsTransport: connect must be a function (options) => Promise<NatsConnection>');
    this.options = options;
    this.subjects = jobSubjects(options.jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  }

  async listen(handler: CoordinatorHandler): Promise<Listener> {
    const owned = !this.options.connection;
    const nc =
      this.options.connection ??
      (await connectNats({
        servers: this.options.servers!,
        ...(this.options.auth ? { auth: this.options.auth } : {}),
        ...(this.options.tls ? { tls: this.options.tls } : {}),
        ...(this.options.readFile ? { readFile: this.options.readFile } : {}),
        name: `mezo-coordinator ${this.options.jobId}`,
      }, this.options.connect));
    const listener = new NatsListener(
      nc,
      owned,
      handler,
      this.subjects,
      this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      this.options.callTimeoutMs ?? 30_000,
    );
    // The subscriptions are on the server before listen() resolves: an agent's next request finds them.
    await nc.flush();
    return listener;
  }

  connect(credentials: AgentCredentials): CoordinatorClient {
    return new NatsCoordinatorClient(this.options, this.subjects, credentials, this.counters);
  }

  /**
   * Agent side: session messages that reached this transport's clients on their downlink and were dropped as
   * not the coordinator's (a MAC, sequence number or signature that did not check out), in total.
   */
  forgedDownlink(): number {
    return this.counters.forged;
  }
}

/** Asks a job's coordinator for its health over NATS: SERVING or NOT_SERVING (UNAVAILABLE when none listens). */
export async function checkNatsHealth(nc: NatsConnection, jobId: string, options: { subjectPrefix?: string; timeoutMs?: number } = {}): Promise<HealthStatus> {
  const subjects = jobSubjects(jobId, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
  try {
    const reply = await nc.request(subjects.health, Empty, { timeout: options.timeoutMs ?? 5000 });
    return Buffer.from(reply.data).toString('utf8') as HealthStatus;
  } catch (err) {
    throw asTransportError(err, 'health');
  }
}
