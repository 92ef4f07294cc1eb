/**
 * Why an encrypted object was rejected. Every reason means "these bytes are not what TESS wrote
 * under this key"; callers mark the file `corrupt` and release no further plaintext.
 */
export type IntegrityReason =
  /** The object does not start with the `TESS` magic. */
  | 'bad-magic'
  /** A format version this code does not understand. */
  | 'unsupported-version'
  /** An algorithm id this code does not understand. */
  | 'unsupported-algorithm'
  /** A header field is out of range or the fields do not add up to the declared header length. */
  | 'header-format'
  /** The header MAC does not verify: header edited, or wrong data key. */
  | 'header-mac'
  /** The header is authentic but belongs to another file (objects swapped). */
  | 'file-id'
  /** A segment's GCM tag does not verify: flipped bit, reordered/duplicated/dropped/appended segment. */
  | 'segment-tag'
  /** The ciphertext source ended before the expected number of bytes. */
  | 'truncated'
  /** The ciphertext length is impossible for this header (e.g. a trailing partial tag). */
  | 'length'
  /** The ciphertext source delivered more bytes than expected. */
  | 'trailing-data';

/** Thrown (or emitted as a stream error) when an encrypted object fails an integrity check. */
export class IntegrityError extends Error {
  constructor(
    readonly reason: IntegrityReason,
    message: string,
    /** Index of the failing segment, when the failure is tied to one. */
    readonly segmentIndex?: number,
  ) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/** True when `error` is an {@link IntegrityError} (optionally with the given reason). */
export function isIntegrityError(error: unknown, reason?: IntegrityReason): error is IntegrityError {
  return error instanceof IntegrityError && (reason === undefined || error.reason === reason);
}
