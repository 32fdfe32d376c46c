/**
 * The NATS side of a simulated fleet: the coordinator on its own connection, and every virtual agent on one
 * shared connection (a real fleet has one per device; thousands of sockets on one host would measure the
 * kernel, not the protocol). Without a server URL a local nats-server is started for the run and stopped after.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { connectNats } from '../shared/transport/nats/connect.js';
import { NatsTransport } from '../shared/transport/nats/transport.js';
import { TransportError } from '../shared/transport/errors.js';
import type { Transport } from '../shared/transport/transport.js';
import { natsServerPath, startNatsServer, type NatsServer } from './local-nats-server.js';

export interface SimulationNatsLink {
  /** The coordinator's transport (it opens and closes its own connection). */
  transport: Transport;
  /** The virtual agents' transport, over one shared connection. */
  agentTransport: Transport;
  /** The server URL used. */
  url: string;
  close(): Promise<void>;
}

export class NatsUnavailableError extends Error {
  override name = 'NatsUnavailableError';
}

export async function createSimulationNatsLink(natsUrl: string | undefined, jobName: string): Promise<SimulationNatsLink> {
  let server: NatsServer | undefined;
  if (natsUrl === undefined) {
    if (!natsServerPath()) {
      throw new NatsUnavailableError('--transport nats needs --nats-url or a nats-server on PATH (e.g. apt-get install -y nats-server)');
    }
    server = await startNatsServer();
  }
  const url = natsUrl ?? server!.url;
  // A job id of its own, so two simulations on one server never share subjects.
  const jobId = `${jobName}-${randomBytes(4).toString('hex')}`;
  let agents: NatsConnection;
  try {
    agents = await connectNats({ servers: url, name: `mezo-simulate agents ${jobId}` });
  } catch (error) {
    await server?.stop(true);
    // connectNats's error already names the server; wrapping its message again would repeat it.
    const message = error instanceof TransportError ? error.message : `cannot connect to NATS at ${url}: ${(error as Error).message}`;
    throw new NatsUnavailableError(message, { cause: error });
  }
  return {
    url,
    transport: new NatsTransport({ jobId, servers: url }),
    agentTransport: new NatsTransport({ jobId, connection: agents }),
    close: async () => {
      await agents.drain().catch(() => agents.close());
      await server?.stop(true);
    },
  };
}
