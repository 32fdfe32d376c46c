/**
 * Secrets never reach a record, a report or a log line: values under a key that names a credential (a token, a
 * password, a secret, an nkey seed, a private key, a TLS key given as PEM text: `keyPem`) are replaced before
 * anything is written. Paths to key files (`tlsKey`, `nkeySeedFile`) are not secrets and stay.
 */

/** What a redacted value reads as. */
export const REDACTED = '[redacted]';

const SECRET_KEY = /(token|tokens|password|passwd|pass|secret|secrets|nkeyseed|privatekey|keypem|authorization|cookie)$/i;

/** Whether a value under `key` is a credential. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * A deep copy of `value` (plain JSON data) with every credential replaced by REDACTED. Empty values stay as they
 * are, so a record still shows that no secret was set.
 */
export function redactSecrets<T>(value: T): T {
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (key !== undefined && isSecretKey(key)) {
      const empty = v === undefined || v === null || v === '' || (typeof v === 'object' && Object.keys(v as object).length === 0);
      return empty ? v : REDACTED;
    }
    if (Array.isArray(v)) return v.map((item) => walk(item, undefined));
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, k);
      return out;
    }
    return v;
  };
  return walk(value, undefined) as T;
}

/** pino `redact` paths: the same credential names at the top level of a log line and one level down. */
export const LOG_REDACT_PATHS: string[] = ['token', 'tokens', 'password', 'pass', 'secret', 'nkeySeed', 'keyPem', 'dashboardToken', 'metricsToken', 'authorization', 'cookie'].flatMap(
  (name) => [name, `*.${name}`],
);
