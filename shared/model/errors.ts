/**
 * The one error type model preparation throws. Callers (the CLI, an agent loading a prepared model) can tell a
 * bad model or a bad option from an unexpected failure, and the message always names what is wrong.
 */
export class ModelPreparationError extends Error {
  override readonly name = 'ModelPreparationError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The message of an unknown thrown value, for wrapping it in a ModelPreparationError. */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
