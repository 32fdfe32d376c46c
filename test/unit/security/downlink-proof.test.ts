/**
 * What authenticates the coordinator's side of a NATS session (nats/proof.ts) and its signed statements
 * (log-signature.ts): a downlink MAC binds the sequence number, the control and status headers, the status
 * message and the body, and is never an uplink MAC of the same bytes; a statement's signature binds its kind and
 * every field, and is never a log record's signature.
 */
import { describe, expect, it } from 'vitest';
import { SESSION_END_STATEMENT, downlinkMac, sessionEndFields, sessionKey, uplinkMac } from '../../../shared/transport/nats/proof.js';
import { LogSigner, LogVerifier } from '../../../shared/log/log-signature.js';

const body = Buffer.from('body');

describe('downlink MACs', () => {
  const key = sessionKey('tok', 'mezo.job', 'a1', 'S1', 'rn', 'sn');

  it('bind the sequence number, the headers, the status message and the body', () => {
    const mac = downlinkMac(key, 1, 'end', 'UNAVAILABLE', 'gone', body);
    expect(downlinkMac(key, 1, 'end', 'UNAVAILABLE', 'gone', body)).toBe(mac);
    expect(downlinkMac(key, 2, 'end', 'UNAVAILABLE', 'gone', body)).not.toBe(mac);
    expect(downlinkMac(key, 1, '', 'UNAVAILABLE', 'gone', body)).not.toBe(mac);
    expect(downlinkMac(key, 1, 'end', 'CANCELLED', 'gone', body)).not.toBe(mac);
    expect(downlinkMac(key, 1, 'end', 'UNAVAILABLE', 'gone!', body)).not.toBe(mac);
    expect(downlinkMac(key, 1, 'end', 'UNAVAILABLE', 'gone', Buffer.from('bodY'))).not.toBe(mac);
    expect(downlinkMac(sessionKey('tok', 'mezo.job', 'a1', 'S2', 'rn', 'sn'), 1, 'end', 'UNAVAILABLE', 'gone', body)).not.toBe(mac);
  });

  it('differ from the uplink MAC of the same message, so the agent\'s messages never pass as the coordinator\'s', () => {
    expect(downlinkMac(key, 1, '', '', '', body)).not.toBe(uplinkMac(key, 1, '', '', body));
    expect(downlinkMac(key, 3, 'end', 'CANCELLED', '', Buffer.alloc(0))).not.toBe(uplinkMac(key, 3, 'end', 'CANCELLED', Buffer.alloc(0)));
  });
});

describe('signed statements', () => {
  const signer = LogSigner.generate();
  const verifier = LogVerifier.for(signer.publicKey);
  const fields = sessionEndFields('mezo.job', 'a1', 'S1', 'UNAVAILABLE', 'no session S1', '1000');

  it('verify under the signer\'s key for the same kind and fields only', () => {
    const signature = signer.signStatement(SESSION_END_STATEMENT, fields);
    expect(verifier.verifyStatement(SESSION_END_STATEMENT, fields, signature)).toBe(true);
    expect(verifier.verifyStatement('snapshot', fields, signature)).toBe(false);
    for (let i = 0; i < fields.length; i++) {
      const changed = fields.map((v, j) => (j === i ? `${v}x` : v));
      expect(verifier.verifyStatement(SESSION_END_STATEMENT, changed, signature), `field ${i}`).toBe(false);
    }
    // Text moved from one field into the next is another statement.
    expect(verifier.verifyStatement(SESSION_END_STATEMENT, ['mezo.joba', '1', ...fields.slice(2)], signer.signStatement(SESSION_END_STATEMENT, ['mezo.job', 'a1', ...fields.slice(2)]))).toBe(false);
    expect(LogVerifier.for(LogSigner.generate().publicKey).verifyStatement(SESSION_END_STATEMENT, fields, signature)).toBe(false);
    expect(verifier.verifyStatement(SESSION_END_STATEMENT, fields, undefined)).toBe(false);
    expect(verifier.verifyStatement(SESSION_END_STATEMENT, fields, 'zz')).toBe(false);
  });

  it('are never record signatures, nor the other way round', () => {
    const hash = 'ab'.repeat(32);
    const recordSignature = signer.sign(hash);
    expect(verifier.verify(hash, recordSignature)).toBe(true);
    expect(verifier.verifyStatement('', [hash], recordSignature)).toBe(false);
    expect(verifier.verify(hash, signer.signStatement('', [hash]))).toBe(false);
  });
});
