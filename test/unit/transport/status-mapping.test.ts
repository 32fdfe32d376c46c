/**
 * The status vocabulary all three transports share (errors.ts): a status name read off the wire, and any thrown
 * value as a TransportError, which each transport falls back on after mapping its own library's errors.
 */
import { describe, expect, it } from 'vitest';
import { MessageValidationError, TransportError, statusFromName, toTransportError } from '../../../shared/transport/index.js';

describe('status mapping', () => {
  it('reads a status name, and anything else as UNKNOWN', () => {
    expect(statusFromName('UNAVAILABLE')).toBe('UNAVAILABLE');
    expect(statusFromName('OK')).toBe('OK');
    expect(statusFromName('unavailable')).toBe('UNKNOWN');
    expect(statusFromName('toString')).toBe('UNKNOWN');
    expect(statusFromName('')).toBe('UNKNOWN');
  });

  it('keeps a TransportError as it is and wraps anything else with the given status and context', () => {
    const own = new MessageValidationError('task.seeds', 'must not be empty');
    expect(toTransportError(own, 'UNAVAILABLE')).toBe(own);
    const cause = new Error('socket closed');
    const wrapped = toTransportError(cause, 'UNAVAILABLE', 'session send');
    expect(wrapped).toBeInstanceOf(TransportError);
    expect(wrapped).toMatchObject({ code: 'UNAVAILABLE', message: 'session send: socket closed', cause });
    expect(toTransportError('plain text')).toMatchObject({ code: 'INTERNAL', message: 'plain text' });
  });
});
