/** Tests run the same local nats-server launcher as `mezo simulate --transport nats`; .ci/run installs the binary. */
export { freePort, natsServerPath, startNatsServer, type NatsServer, type NatsServerOptions } from '../../simulation/local-nats-server.js';
