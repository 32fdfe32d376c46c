/** Throwaway certificates for TLS tests, made with the openssl command (.ci/run installs it). */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const haveOpenssl: boolean = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Writes into `dir` a CA (`<prefix>ca.crt/.key`) and the certificates it signs: `<prefix>server` for
 * 127.0.0.1/localhost and `<prefix>client` for an agent (issued to `clientIds`, as DNS subject alternative
 * names: with mutual TLS the coordinator admits a client only as an agent its certificate names). EC P-256 keys,
 * valid for two days.
 */
export function makeTestPki(dir: string, prefix: string, caName = 'test-ca', clientIds: string[] = []): void {
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', `${prefix}ca.key`, '-out', `${prefix}ca.crt`, '-days', '2', '-subj', `/CN=${prefix}${caName}`);
  writeFileSync(join(dir, `${prefix}server.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const san = clientIds.length > 0 ? `subjectAltName=${clientIds.map((id) => `DNS:${id}`).join(',')}\n` : '';
  writeFileSync(join(dir, `${prefix}client.ext`), `${san}extendedKeyUsage=clientAuth\n`);
  for (const role of ['server', 'client']) {
    run('req', ...ec, '-keyout', `${prefix}${role}.key`, '-out', `${prefix}${role}.csr`, '-subj', `/CN=${prefix}${role}`);
    run('x509', '-req', '-in', `${prefix}${role}.csr`, '-CA', `${prefix}ca.crt`, '-CAkey', `${prefix}ca.key`, '-CAcreateserial',
      '-out', `${prefix}${role}.crt`, '-days', '2', '-extfile', `${prefix}${role}.ext`);
  }
}
