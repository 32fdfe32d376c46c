import { describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { natsServerPath, startNatsServer } from '../../helpers/nats-server.js';

describe.skipIf(!natsServerPath())('nats-server test helper', () => {
  it('starts a server with JetStream that a client can use, and stops it', async () => {
    const server = await startNatsServer();
    try {
      const nc = await connect({ servers: server.url });
      const jsm = await nc.jetstreamManager();
      const info = await jsm.getAccountInfo();
      expect(info.limits).toBeDefined();
      await nc.close();
    } finally {
      await server.stop(true);
    }
  });
});
