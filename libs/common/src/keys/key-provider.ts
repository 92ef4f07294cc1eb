/** A data key wrapped for storage next to (and inside the header of) its object. */
export interface WrappedDataKey {
  /**
   * Says how to unwrap, and is authenticated with the wrapped key (changing it breaks unwrapping):
   * `local:<masterKeyId>`, `aws-sm:<secretId>:<versionId>` (envelope mode) or `secret:<name>` (per-file-secret).
   */
  keyRef: string;
  /** Ciphertext of the data key under the master key (60 bytes in envelope mode); empty in per-file-secret mode. */
  wrappedKey: Buffer;
}

/** Plaintext hashes recorded with a key in per-file-secret mode (as the original design did); lowercase hex. */
export interface FileHashes {
  sha1: string;
  sha256: string;
}

/**
 * Hands out and recovers per-file data keys. Data keys never leave the process unwrapped:
 * not in logs, Redis, job payloads or the database. Callers should `fill(0)` a data key once done with it.
 *
 * Failures come in two kinds. {@link KeyUnwrapError} means the stored key material itself does not
 * check out (or its key version is gone): retrying cannot help. Any other error (network, throttling after
 * the retries, permissions) is operational and must not mark a file as corrupt.
 */
export interface KeyProvider {
  readonly mode: 'envelope' | 'per-file-secret';
  /** A fresh random 256-bit data key for `fileId`, wrapped for storage and bound to `fileId`. */
  createDataKey(fileId: string): Promise<{ dataKey: Buffer } & WrappedDataKey>;
  /**
   * Recovers the data key. Throws {@link KeyUnwrapError} when the key cannot be authenticated for `fileId`
   * (wrong master key, tampered, wrapped for another file, key version or secret missing).
   */
  unwrapDataKey(fileId: string, wrapped: WrappedDataKey): Promise<Buffer>;
  /** Records the plaintext hashes once a file is stored (no-op in envelope mode); idempotent. */
  recordHashes(fileId: string, wrapped: WrappedDataKey, hashes: FileHashes): Promise<void>;
  /**
   * Forgets the key; idempotent. Per-file-secret: deletes the secret. Envelope: nothing to do, the wrapped
   * key lives only in the row and the object header, which the caller deletes.
   */
  destroyDataKey(fileId: string, wrapped: WrappedDataKey): Promise<void>;
  /** Throws when the master key / secret store is unusable (readiness). */
  check(): Promise<void>;
  /** Releases connections (Secrets Manager sockets) at shutdown; the provider is not used afterwards. */
  close(): Promise<void>;
}

/**
 * Why a wrapped key was refused.
 * - `authentication-failed`: the AES-GCM tag did not verify: wrong master key, tampered bytes, or a key
 *   wrapped for another file or under another key reference. The stored data is suspect.
 * - `malformed`: the wrapped key, key reference or secret content has the wrong shape. Suspect too.
 * - `wrong-file`: (per-file-secret) the key reference names another file's secret.
 * - `wrong-provider`: the key reference belongs to another key provider or mode: a configuration problem.
 * - `key-not-found`: the master key version (or per-file secret) no longer exists: a configuration or
 *   retention problem (a restored key whose version was pruned), not proof of tampering.
 */
export type KeyUnwrapReason =
  | 'authentication-failed'
  | 'malformed'
  | 'wrong-file'
  | 'wrong-provider'
  | 'key-not-found';

/** The data key could not be recovered for this file; retrying will not help. Never carries key material. */
export class KeyUnwrapError extends Error {
  constructor(
    readonly fileId: string,
    readonly keyRef: string,
    readonly reason: KeyUnwrapReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KeyUnwrapError';
  }
}
