import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectNats } from '../../../shared/transport/index.js';
import { createSimulationNatsLink } from '../../../simulation/nats-link.js';

/** A loopback port nothing listens on: bound by the OS, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe('a NATS server that is not there', () => {
  it('is named once in the error of connectNats and of mezo simulate --transport nats', async () => {
    const url = `nats://127.0.0.1:${await deadPort()}`;
    const direct = await connectNats({ servers: url }).then(() => undefined, (err: Error) => err);
    expect(direct).toMatchObject({ code: 'UNAVAILABLE' });
    expect(direct!.message).toBe(`cannot connect to NATS at ${url}: CONNECTION_REFUSED`);

    const simulated = await createSimulationNatsLink(url, 'dead').then(() => undefined, (err: Error) => err);
    expect(simulated).toMatchObject({ name: 'NatsUnavailableError' });
    expect(occurrences(simulated!.message, 'cannot connect to NATS')).toBe(1);
    expect(simulated!.message).toBe(direct!.message);
  });
});
