/**
 * Applies version retention (VERSIONS_KEEP, VERSIONS_MAX_AGE): scheduled by the worker as one BullMQ job
 * scheduler (`prune-versions`), so one run happens per interval across all replicas; `fileId` narrows a
 * run to one file (enqueued after a new version of it was stored).
 */
export interface PruneVersionsPayload {
  fileId?: string;
}

export interface PruneVersionsResult {
  /** Versions removed by this run. */
  removed: number;
}

export function isPruneVersionsPayload(value: unknown): value is PruneVersionsPayload {
  if (typeof value !== 'object' || value === null) return false;
  const { fileId } = value as Record<string, unknown>;
  return fileId === undefined || (typeof fileId === 'string' && fileId !== '');
}

export function isPruneVersionsResult(value: unknown): value is PruneVersionsResult {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>).removed === 'number'
  );
}
