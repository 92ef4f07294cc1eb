import type { Readable } from 'node:stream';

/** Options for a single object write. */
export interface PutObjectOptions {
  /** Aborting stops the write and removes anything partially written (S3: AbortMultipartUpload). */
  signal?: AbortSignal;
  /** Called with the cumulative number of bytes durably handed to the store (at most a few times per second). */
  onProgress?: (bytesWritten: number) => void;
}

export interface ObjectStat {
  size: number;
}

/**
 * Where encrypted objects live. Keys are server-generated (`objects/<fileId>`), never user input.
 * Implementations: `local` (a directory, atomic rename) and `s3` (multipart upload).
 */
export interface ObjectStore {
  readonly driver: 'local' | 's3';
  /** Streams `body` to `key`. The object becomes visible only when the whole body was written (atomic). */
  put(key: string, body: Readable, options?: PutObjectOptions): Promise<ObjectStat>;
  /** Reads bytes `start..end` inclusive (end defaults to the last byte). Rejects with ObjectNotFoundError. */
  getRange(key: string, start: number, end?: number): Promise<Readable>;
  /** Size of the object, or null when it does not exist. */
  stat(key: string): Promise<ObjectStat | null>;
  /** Removes the object; removing a missing object is not an error (idempotent). */
  delete(key: string): Promise<void>;
  /** Aborts unfinished writes for `key` left by a crashed writer (S3 multipart uploads, local temp files). */
  abortIncomplete(key: string): Promise<number>;
  /** Throws when the store is unreachable or misconfigured (readiness). */
  check(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`Object ${key} does not exist in the object store`);
    this.name = 'ObjectNotFoundError';
  }
}
