/** A data key wrapped for storage next to (and inside the header of) its object. */
export interface WrappedDataKey {
  /** Identifies how to unwrap: e.g. `local:<masterKeyId>` or `aws-sm:<secretId>:<versionId>` or `secret:<name>`. */
  keyRef: string;
  /** Ciphertext of the data key under the master key; empty in per-file-secret mode. */
  wrappedKey: Buffer;
}

/** Plaintext hashes recorded with a key in per-file-secret mode (as the original design did). */
export interface FileHashes {
  sha1: string;
  sha256: string;
}

/**
 * Hands out and recovers per-file data keys. Data keys never leave the process unwrapped:
 * not in logs, Redis, job payloads or the database.
 */
export interface KeyProvider {
  readonly mode: 'envelope' | 'per-file-secret';
  /** A fresh random 256-bit data key for `fileId`, wrapped for storage. */
  createDataKey(fileId: string): Promise<{ dataKey: Buffer } & WrappedDataKey>;
  /** Recovers the data key; throws when the master key or secret cannot authenticate it. */
  unwrapDataKey(fileId: string, wrapped: WrappedDataKey): Promise<Buffer>;
  /** Records the plaintext hashes once a file is stored (no-op in envelope mode). */
  recordHashes(fileId: string, wrapped: WrappedDataKey, hashes: FileHashes): Promise<void>;
  /** Forgets the key (per-file-secret: deletes the secret); idempotent. */
  destroyDataKey(fileId: string, wrapped: WrappedDataKey): Promise<void>;
  /** Throws when the master key / secret store is unreachable (readiness). */
  check(): Promise<void>;
}
