/**
 * Where a job is in its run. Not a file status (`FileStatus`): a file is `processing` while its job goes
 * through `encrypting` and `finalizing`, and `corrupt` is a file's state that no job reports.
 */
export const JOB_STAGES = ['queued', 'encrypting', 'finalizing', 'stored', 'failed'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/** `job.updateProgress` payload: a few updates per second per job at most. */
export interface JobProgress {
  stage: JobStage;
  bytesDone: number;
  bytesTotal: number;
  /** The file's owner, for routing only (gateways do not forward it to sockets). */
  ownerId?: string;
}

/** True for a progress report a worker sent (BullMQ passes progress through Redis untyped). */
export function isJobProgress(value: unknown): value is JobProgress {
  const v = value as Partial<JobProgress> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.stage === 'string' &&
    (JOB_STAGES as readonly string[]).includes(v.stage) &&
    typeof v.bytesDone === 'number' &&
    typeof v.bytesTotal === 'number' &&
    (v.ownerId === undefined || typeof v.ownerId === 'string')
  );
}
