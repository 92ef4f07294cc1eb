/** Hash, encrypt and store the temp file of `fileId`. The job id is the file id (idempotent enqueue). */
export interface EncryptFilePayload {
  fileId: string;
  ownerId: string;
}

/** What a finished `encrypt-file` job returns (also sent to the owner's sockets). */
export interface EncryptFileResult {
  /** The file that was stored: for a new version, the file it belongs to (not the job's upload row). */
  fileId: string;
  /** The version the upload became (1 for a new file). */
  version?: number;
  sha1: string;
  sha256: string;
  size: number;
  encryptedSize: number;
  /** The file's owner, so every gateway replica can route the event to sockets without a query. */
  ownerId?: string;
  /** True when the job found the file already stored or deleted and did nothing. */
  skipped?: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** True for an `encrypt-file` payload that names a file and its owner. */
export function isEncryptFilePayload(value: unknown): value is EncryptFilePayload {
  return (
    isRecord(value) &&
    typeof value.fileId === 'string' &&
    value.fileId !== '' &&
    typeof value.ownerId === 'string'
  );
}

/** True for a well-formed `encrypt-file` result (as it arrives from Redis, after JSON parsing). */
export function isEncryptFileResult(value: unknown): value is EncryptFileResult {
  return (
    isRecord(value) &&
    typeof value.fileId === 'string' &&
    typeof value.sha1 === 'string' &&
    typeof value.sha256 === 'string' &&
    typeof value.size === 'number' &&
    typeof value.encryptedSize === 'number' &&
    (value.ownerId === undefined || typeof value.ownerId === 'string') &&
    (value.skipped === undefined || typeof value.skipped === 'boolean')
  );
}
