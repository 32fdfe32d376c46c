/**
 * Signatures of update-log records. The log belongs to the coordinator alone: every record it appends carries
 * an Ed25519 signature over the record's hash, made with the coordinator's key, and every reader (agents,
 * export, catch-up, the JetStream reader) checks it against the coordinator's public key. A message that merely
 * chains correctly — a forged update, a record published on the log's subjects by someone else — is therefore
 * told apart from the log and ignored, instead of extending or stopping a replica.
 *
 * Signed message: the ASCII domain "mezo-log-entry/1" followed by the 32 hash bytes. The hash already chains
 * to the job's genesis (job id, base weights, distribution), so a signature never carries over to another job.
 * Public keys are written as "ed25519:" + the 32 raw key bytes in hex (64 digits); signatures as 128 hex digits.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

const DOMAIN = Buffer.from('mezo-log-entry/1', 'ascii');
const PUBLIC_KEY_PATTERN = /^ed25519:[0-9a-f]{64}$/;
export const SIGNATURE_PATTERN = /^[0-9a-f]{128}$/;
/** Bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;
/** Verified (hash, signature) pairs remembered per key: a simulated fleet verifies each update once, not per agent. */
const VERIFIED_CACHE = 4096;

/** A key file or key text that cannot be used, naming what is wrong with it. */
export class LogKeyError extends Error {
  override name = 'LogKeyError';
}

function signedMessage(hash: string): Buffer {
  return Buffer.concat([DOMAIN, Buffer.from(hash, 'hex')]);
}

/**
 * What the coordinator states with the same key besides log records (a snapshot's identity, a session end it
 * cannot MAC): its own domain, so a statement never passes as a record signature or as a statement of another
 * kind; the fields are JSON-encoded, so no choice of field text can shift one field into the next.
 */
const STATEMENT_DOMAIN = 'mezo-statement/1\n';

function statementMessage(kind: string, fields: readonly string[]): Buffer {
  return Buffer.from(STATEMENT_DOMAIN + JSON.stringify([kind, ...fields]), 'utf8');
}

function publicKeyText(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return `ed25519:${Buffer.from(jwk.x!, 'base64url').toString('hex')}`;
}

/** Checks a public key's text form ("ed25519:" + 64 hex digits); `field` names it in the error. */
export function parseLogPublicKey(text: string, field = 'logPublicKey'): string {
  const trimmed = text.trim().toLowerCase();
  if (!PUBLIC_KEY_PATTERN.test(trimmed)) throw new LogKeyError(`${field} must be "ed25519:" followed by 64 hex digits, got ${JSON.stringify(text)}`);
  return trimmed;
}

/** The coordinator's signing key. */
export class LogSigner {
  readonly publicKey: string;

  private constructor(private readonly key: KeyObject) {
    this.publicKey = publicKeyText(createPublicKey(key));
  }

  /** A fresh key that lives only as long as the process (simulations, tests). */
  static generate(): LogSigner {
    return new LogSigner(generateKeyPairSync('ed25519').privateKey);
  }

  /** A key from its PKCS#8 PEM text. */
  static fromPem(pem: string, where = 'signing key'): LogSigner {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new LogKeyError(`${where}: not a PEM private key`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new LogKeyError(`${where}: an ${key.asymmetricKeyType} key; the update log is signed with ed25519`);
    return new LogSigner(key);
  }

  /**
   * Loads the key at `path`, or creates it (mode 0600, written to a temporary name, synced and renamed, so a
   * crash never leaves half a key) when the file does not exist.
   */
  static async loadOrCreate(path: string): Promise<LogSigner> {
    try {
      return LogSigner.fromPem(await readFile(path, 'utf8'), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const signer = LogSigner.generate();
    mkdirSync(dirname(path), { recursive: true });
    const temporary = `${path}.new`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(signer.key.export({ format: 'pem', type: 'pkcs8' }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    return signer;
  }

  /** The signature (hex) of the record whose hash is `hash`. */
  sign(hash: string): string {
    return sign(null, signedMessage(hash), this.key).toString('hex');
  }

  /** The signature (hex) of a statement of `kind` made of `fields` (checked by LogVerifier.verifyStatement). */
  signStatement(kind: string, fields: readonly string[]): string {
    return sign(null, statementMessage(kind, fields), this.key).toString('hex');
  }
}

/** Checks signatures against one public key. */
export class LogVerifier {
  private static readonly byKey = new Map<string, LogVerifier>();
  private readonly key: KeyObject;
  private readonly verified = new Map<string, string>();

  private constructor(readonly publicKey: string) {
    this.key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey.slice(8), 'hex').toString('base64url') }, format: 'jwk' });
  }

  /** The verifier of a public key (text form); one per key per process, so its cache is shared. */
  static for(publicKey: string): LogVerifier {
    const key = parseLogPublicKey(publicKey);
    let verifier = LogVerifier.byKey.get(key);
    if (!verifier) {
      verifier = new LogVerifier(key);
      LogVerifier.byKey.set(key, verifier);
    }
    return verifier;
  }

  /** Whether `signature` is this key's signature of the record hashed `hash`. Absent or malformed: false. */
  verify(hash: string, signature: string | undefined): boolean {
    if (signature === undefined || !SIGNATURE_PATTERN.test(signature) || !/^[0-9a-f]{64}$/.test(hash)) return false;
    if (this.verified.get(hash) === signature) return true;
    const ok = verify(null, signedMessage(hash), this.key, Buffer.from(signature, 'hex'));
    if (ok) {
      if (this.verified.size >= VERIFIED_CACHE) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(hash, signature);
    }
    return ok;
  }

  /** Whether `signature` is this key's signature of the statement (LogSigner.signStatement). Absent or malformed: false. */
  verifyStatement(kind: string, fields: readonly string[], signature: string | undefined): boolean {
    if (signature === undefined || !SIGNATURE_PATTERN.test(signature)) return false;
    return verify(null, statementMessage(kind, fields), this.key, Buffer.from(signature, 'hex'));
  }
}
