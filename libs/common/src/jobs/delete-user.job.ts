/**
 * Delete a user and everything they stored (docs/security.md item 37): every file's object, data key,
 * staging file and share links, then the account row (its tokens, factors and sessions go with it). The
 * job id is `delete-user-<userId>` (one per user). `requestedBy` is the admin, named in the audit event.
 */
export interface DeleteUserPayload {
  userId: string;
  requestedBy: string;
}

/** What a finished `delete-user` job returns. */
export interface DeleteUserResult {
  userId: string;
  deletedFiles: number;
  /** True when the user was already gone (a second delivery). */
  skipped?: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function deleteUserJobId(userId: string): string {
  return `delete-user-${userId}`;
}

export function isDeleteUserPayload(value: unknown): value is DeleteUserPayload {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.userId === 'string' &&
    UUID.test(v.userId) &&
    typeof v.requestedBy === 'string'
  );
}

export function isDeleteUserResult(value: unknown): value is DeleteUserResult {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.userId === 'string' &&
    typeof v.deletedFiles === 'number' &&
    (v.skipped === undefined || typeof v.skipped === 'boolean')
  );
}
