import { IntegrityError } from '../format/integrity.error.js';
import { KeyUnwrapError } from '../keys/key-provider.js';

/** The object or its key cannot be trusted: no plaintext was (or will be) released from the bad part. */
export class CorruptObjectError extends Error {
  constructor(
    readonly fileId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CorruptObjectError';
  }
}

/** True for failures that mean the stored bytes or key cannot be trusted (not outages). */
export function isIntegrityFailure(error: unknown): boolean {
  if (error instanceof IntegrityError || error instanceof CorruptObjectError) return true;
  return (
    error instanceof KeyUnwrapError &&
    (error.reason === 'authentication-failed' ||
      error.reason === 'malformed' ||
      error.reason === 'wrong-file')
  );
}

/** One {@link CorruptObjectError} for any integrity failure, naming the file and the reason. */
export function asCorruptObjectError(fileId: string, error: unknown): CorruptObjectError {
  if (error instanceof CorruptObjectError) return error;
  const detail =
    error instanceof IntegrityError ? `${error.reason}: ${error.message}` : (error as Error).message;
  return new CorruptObjectError(fileId, `Integrity check failed (${detail})`, { cause: error });
}
