/**
 * Why a staging file was rejected. Every reason means "these bytes are not a complete staging file TESS
 * wrote for this file under this key"; the worker fails the job permanently and stores nothing.
 */
export type StagingIntegrityReason =
  /** The file does not start with the `TSTG` magic. */
  | 'bad-magic'
  /** A staging version or algorithm this code does not understand. */
  | 'unsupported-version'
  /** A header field is out of range, or the file is shorter than a header. */
  | 'header-format'
  /** The header MAC does not verify: header edited, or wrong data key. */
  | 'header-mac'
  /** The header is authentic but names another file. */
  | 'file-id'
  /** A record frame is impossible (length over the record size, unknown kind, a seal of the wrong size). */
  | 'record-format'
  /** A record's GCM tag does not verify: flipped, reordered, spliced or edited record. */
  | 'record-tag'
  /** No seal record at the end: the upload never completed (or was truncated). */
  | 'unsealed'
  /** An append was attempted on a sealed staging file. */
  | 'sealed'
  /** Bytes after the seal record. */
  | 'trailing-data'
  /** The sealed total does not match the records, or the expected upload size. */
  | 'length';

/** Thrown when a staging file fails a check. The message is readable and starts with `staging-integrity`. */
export class StagingIntegrityError extends Error {
  constructor(
    readonly reason: StagingIntegrityReason,
    detail: string,
    /** Index of the failing record, when the failure is tied to one. */
    readonly recordIndex?: number,
  ) {
    super(`staging-integrity: ${detail}`);
    this.name = 'StagingIntegrityError';
  }
}

export function isStagingIntegrityError(
  error: unknown,
  reason?: StagingIntegrityReason,
): error is StagingIntegrityError {
  return error instanceof StagingIntegrityError && (reason === undefined || error.reason === reason);
}
