/**
 * The NATS transport and what goes with it: connections (connect.ts, with an injectable connect function),
 * the job's subject tree (subjects.ts), per-agent permissions for nats-server (auth.ts) and the transport
 * itself (transport.ts, which lists the rooms it is built from).
 */
export { NatsTransport, checkNatsHealth, type NatsTransportOptions } from './transport.js';
export {
  connectNats,
  natsConnectionOptions,
  defaultNatsConnect,
  nodeFileReader,
  NatsConfigError,
  type NatsAuth,
  type NatsTlsFiles,
  type NatsConnectOptions,
  type NatsConnectFn,
  type NatsFileReader,
} from './connect.js';
export { createNatsUserNkey, agentPermissions, coordinatorPermissions, natsJobAuthConfig, type NatsPermissions, type NatsUserCredential, type JobAuthConfig } from './auth.js';
export { jobSubjects, logStreamName, subjectToken, fromSubjectToken, DEFAULT_SUBJECT_PREFIX, NATS_HEADERS, type JobSubjects, type RpcMethod } from './subjects.js';
