/** Every BullMQ queue TESS uses, by role. The Redis key prefix comes from config (`<REDIS_PREFIX>:bull`). */
export const QUEUE_NAMES = { crypto: 'crypto' } as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/**
 * Job name -> payload, shared by the producer (gateway) and the consumer (crypto worker).
 * Payloads hold references only: never file bytes, keys or secrets.
 */
export interface JobPayloads {
  /** Hash, encrypt and store the temp file of `fileId`. The job id is the file id (idempotent enqueue). */
  'encrypt-file': { fileId: string; ownerId: string };
}
export type JobName = keyof JobPayloads;
export type JobOf<N extends JobName> = JobPayloads[N];

/** What a finished `encrypt-file` job returns (also sent to the owner's sockets). */
export interface EncryptFileResult {
  fileId: string;
  sha1: string;
  sha256: string;
  size: number;
  encryptedSize: number;
  /** The file's owner, so every gateway replica can route the event to sockets without a query. */
  ownerId?: string;
  /** True when the job found the file already stored or deleted and did nothing. */
  skipped?: boolean;
}

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

/** The BullMQ key prefix for an installation. */
export function bullPrefix(redisPrefix: string): string {
  return `${redisPrefix}:bull`;
}

/** Deterministic object key per file, so a re-run job overwrites instead of duplicating. */
export function objectKeyFor(fileId: string): string {
  return `objects/${fileId}`;
}
