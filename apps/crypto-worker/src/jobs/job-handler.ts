import type { JobName, JobPayloads, JobProgress, JobResults, LockFence } from '#common';

/** The part of a BullMQ job its handler sees: typed by the job's name, with a validated payload. */
export interface HandlerJob<N extends JobName> {
  readonly id: string;
  readonly name: N;
  readonly data: JobPayloads[N];
  /** Attempts that ended before this one. */
  readonly attemptsMade: number;
  updateProgress(progress: JobProgress): Promise<void>;
  /**
   * With a handler that names a lock: the session and key of the lock this run holds. A commit conditioned
   * on it (FileRepository.markStored) cannot happen once the lock is lost.
   */
  readonly fence?: LockFence;
}

/**
 * Runs the jobs of one name. Handlers never swallow errors: the runner hands a failure to `onFailed` and
 * rethrows it, so BullMQ retries with backoff, or gives up for UnrecoverableError.
 */
export interface JobHandler<N extends JobName> {
  /**
   * Runs sharing a lock name never overlap, across workers; the run and the recording of its failure happen
   * under the lock. Without it, runs of this job are not serialized.
   */
  lockName?(data: JobPayloads[N]): string;
  run(job: HandlerJob<N>, signal?: AbortSignal): Promise<JobResults[N]>;
  /** Records a failed attempt in the database; `final` when BullMQ will not retry it. */
  onFailed(job: HandlerJob<N>, error: Error, final: boolean): Promise<void>;
  /** The `outcome` label of `tess_job_duration_seconds` for a finished run. */
  outcome(result: JobResults[N]): string;
}

/** Exactly one handler per job name (checked by the compiler). */
export type JobHandlers = { readonly [N in JobName]: JobHandler<N> };

/** Injection token of the worker's JobHandlers map. */
export const JOB_HANDLERS = Symbol('JOB_HANDLERS');
