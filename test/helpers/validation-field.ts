import { expect } from 'vitest';
import { MessageValidationError } from '../../shared/transport/index.js';

/** The field a MessageValidationError names when `fn` rejects a message; fails the test if `fn` does not throw one. */
export function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MessageValidationError);
    return (err as MessageValidationError).field;
  }
  throw new Error('expected a validation error');
}
