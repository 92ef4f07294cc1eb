/**
 * Follow an upload while it still arrives (docs/security.md item 40, "Pipelined uploads"): the same payload
 * as `encrypt-file` (ids only), on a queue of its own, job id = file id. A follower hashes, checks,
 * encrypts and stores the staged records as they are appended and commits exactly like `encrypt-file` once
 * the upload is sealed and accepted; anything else makes it remove what it wrote and leave the file to the
 * `encrypt-file` job, which is enqueued at the seal as always.
 */
export type { EncryptFilePayload as FollowFilePayload } from './encrypt-file.job.js';

/**
 * What a follower of a multipart upload needs before the upload has a row: the wrapped data key the gateway
 * staged it under (wrapped by the master key, as in the row and the object header; never the data key).
 * Kept in Redis under `followHintKey` for a while, read once by the follower, checked against the row
 * before anything is committed.
 */
export interface FollowHint {
  ownerId: string;
  keyRef: string;
  /** Base64; empty with per-file secrets. */
  wrappedKey: string;
  /** What the client declared: an upper bound of the upload's size (the request's Content-Length). */
  declaredSize: number;
}

/** The Redis key of a multipart upload's follow hint. */
export function followHintKey(redisPrefix: string, fileId: string): string {
  return `${redisPrefix}:follow-hint:${fileId}`;
}

/** How long a follow hint lives: a follower reads it within moments of the upload's start. */
export const FOLLOW_HINT_TTL_SECONDS = 600;

export function isFollowHint(value: unknown): value is FollowHint {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.ownerId === 'string' &&
    typeof v.keyRef === 'string' &&
    v.keyRef !== '' &&
    typeof v.wrappedKey === 'string' &&
    typeof v.declaredSize === 'number'
  );
}
