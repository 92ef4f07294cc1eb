import type { Readable } from 'node:stream';

/** Options for a single object write. */
export interface PutObjectOptions {
  /**
   * Aborting stops the write and removes anything partially written (S3: AbortMultipartUpload).
   * The returned promise then rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /**
   * Called with the cumulative number of bytes durably handed to the store, at most about every 250 ms,
   * and once more with the final size when the object is committed. Must not throw.
   */
  onProgress?: (bytesWritten: number) => void;
  /**
   * Expected total size in bytes, when known. A hint, not enforced: S3 uses it to grow the part size
   * so the object stays within S3's 10,000-part limit.
   */
  size?: number;
  /**
   * The body's chunks are the store's to free: once a chunk is written (local) or copied into a part
   * (S3), the store releases its memory at once (util/release-buffer.ts) instead of leaving it to V8's
   * next full garbage collection. Only for producers that never touch a chunk again once it was read:
   * the encryption pass, whose cipher output is hundreds of MB per second of fresh off-heap buffers
   * (releasing them took a 512 MiB worker pass from 2.4 to 1.35 CPU-s, 31 to 11 mark-compacts).
   */
  releaseChunks?: boolean;
  /**
   * Computes the SHA-256 (lowercase hex) of a buffer off this thread (the crypto worker's hash threads). S3
   * signs every request body's SHA-256 (SigV4 x-amz-content-sha256), which the SDK would otherwise compute
   * again on this thread for every part; with this the store hands each part to `sha256` and signs its
   * answer instead, so S3 still verifies every part it receives. Called with bytes that live in a
   * SharedArrayBuffer and stay unchanged until it settles. Ignored by the local store.
   */
  sha256?: (bytes: Buffer) => Promise<string>;
}

export interface ObjectStat {
  size: number;
}

/**
 * Where encrypted objects live. Keys are server-generated (`objects/<fileId>`), never user input.
 * Implementations: `local` (a directory, atomic rename) and `s3` (multipart upload).
 *
 * `put` consumes `body`; on failure or abort the body is destroyed. Ranges follow HTTP/S3 semantics:
 * `end` is inclusive and clamped to the last byte; `start === size` yields an empty stream (so a 0-byte
 * object can be read with `getRange(key, 0)`); `start > size` rejects with a RangeError.
 */
export interface ObjectStore {
  readonly driver: 'local' | 's3';
  /** Streams `body` to `key`. The object becomes visible only when the whole body was written (atomic). */
  put(key: string, body: Readable, options?: PutObjectOptions): Promise<ObjectStat>;
  /**
   * Reads bytes `start..end` inclusive (end defaults to the last byte). The stream yields exactly that many
   * bytes or errors. Rejects with ObjectNotFoundError.
   */
  getRange(key: string, start: number, end?: number): Promise<Readable>;
  /** Size of the object, or null when it does not exist. */
  stat(key: string): Promise<ObjectStat | null>;
  /** Removes the object; removing a missing object is not an error (idempotent). */
  delete(key: string): Promise<void>;
  /**
   * Aborts unfinished writes for `key` left by a crashed writer (S3 multipart uploads, local temp files)
   * and returns how many were removed. Call it only when no writer for `key` is running: it also removes
   * the unfinished write of a live writer.
   */
  abortIncomplete(key: string): Promise<number>;
  /** Throws when the store is unreachable or misconfigured (readiness). */
  check(): Promise<void>;
  /** Releases connections and sockets at shutdown; the store is not used afterwards. */
  close(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`Object ${key} does not exist in the object store`);
    this.name = 'ObjectNotFoundError';
  }
}

/** A key that could escape the store's namespace (`..`, absolute, backslash, NUL, control characters). */
export class InvalidObjectKeyError extends Error {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`Invalid object key ${JSON.stringify(key.slice(0, 200))}: ${reason}`);
    this.name = 'InvalidObjectKeyError';
  }
}
