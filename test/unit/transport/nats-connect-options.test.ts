/**
 * connect.ts turns client options into nats.js options without touching Node itself: TLS and nkey seed files
 * go through an injected reader (node:fs by default), TLS material may come as PEM text, and each mistake is
 * a NatsConfigError naming the field, before any connection is tried.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REDACTED, redactSecrets } from '../../../shared/redact.js';
import { NatsConfigError, natsConnectionOptions, type NatsFileReader } from '../../../shared/transport/index.js';

const pem = (what: string): string => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
// A syntactically valid nkey user seed (base32, "SU" prefix); natsConnectionOptions only checks its form.
const SEED = 'SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU';

describe('NATS connection options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nats-connect-options-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads TLS and nkey seed files through the injected reader, and takes PEM text as it is', async () => {
    const files: Record<string, string> = { '/ca.pem': pem('CERTIFICATE'), '/seed.nk': `# comment\n${SEED}\n` };
    const asked: string[] = [];
    const readFile: NatsFileReader = async (path) => {
      asked.push(path);
      if (!(path in files)) throw new Error('no such file');
      return files[path]!;
    };
    const options = await natsConnectionOptions({
      servers: 'nats://127.0.0.1:4222',
      auth: { nkeySeedFile: '/seed.nk' },
      tls: { ca: '/ca.pem', certPem: pem('CERTIFICATE'), keyPem: pem('PRIVATE KEY') },
      readFile,
    });
    expect(asked.sort()).toEqual(['/ca.pem', '/seed.nk']);
    expect(options.tls).toEqual({ ca: files['/ca.pem'], cert: pem('CERTIFICATE'), key: pem('PRIVATE KEY') });
    expect(typeof options.authenticator).toBe('function');

    // A private key given as text is a secret in any record or log line; its path is not.
    expect(redactSecrets({ tls: { key: '/k.pem', keyPem: pem('PRIVATE KEY'), certPem: pem('CERTIFICATE') } })).toEqual({
      tls: { key: '/k.pem', keyPem: REDACTED, certPem: pem('CERTIFICATE') },
    });

    const missing = await natsConnectionOptions({ servers: 'nats://x:1', tls: { ca: '/nope.pem' }, readFile }).then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(NatsConfigError);
    expect((missing as Error).message).toContain('/nope.pem');
  });

  it('reads files with node:fs by default', async () => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, pem('CERTIFICATE'));
    await expect(natsConnectionOptions({ servers: 'nats://x:1', tls: { ca } })).resolves.toMatchObject({ tls: { ca: pem('CERTIFICATE') } });
    await expect(natsConnectionOptions({ servers: 'nats://x:1', tls: { ca: join(dir, 'absent.pem') } })).rejects.toThrow(/cannot read the NATS TLS CA .*absent\.pem/);
  });

  it('refuses a TLS item given both ways, text that is not PEM, and a certificate without its key, naming the fields', async () => {
    await expect(natsConnectionOptions({ servers: 'nats://x:1', tls: { ca: '/ca.pem', caPem: pem('CERTIFICATE') } })).rejects.toThrow(/tls\.ca .*tls\.caPem/);
    await expect(natsConnectionOptions({ servers: 'nats://x:1', tls: { caPem: 'not a pem' } })).rejects.toThrow(/tls\.caPem must be PEM text/);
    await expect(natsConnectionOptions({ servers: 'nats://x:1', tls: { certPem: pem('CERTIFICATE') } })).rejects.toThrow(/certificate and its key go together/);
    await expect(natsConnectionOptions({ servers: 'nats://x:1', readFile: 'fs' as unknown as NatsFileReader })).rejects.toThrow(/readFile must be a function/);
  });
});
