import type { TessConfig } from '../config/config.schema.js';
import {
  type DeleteUserPayload,
  type DeleteUserResult,
  isDeleteUserPayload,
  isDeleteUserResult,
} from './delete-user.job.js';
import {
  type EncryptFilePayload,
  type EncryptFileResult,
  isEncryptFilePayload,
  isEncryptFileResult,
} from './encrypt-file.job.js';
import {
  isPruneVersionsPayload,
  isPruneVersionsResult,
  type PruneVersionsPayload,
  type PruneVersionsResult,
} from './prune-versions.job.js';

export * from './delete-user.job.js';
export * from './encrypt-file.job.js';
export * from './follow-file.job.js';
export * from './job-progress.js';
export * from './prune-versions.job.js';

/** Every BullMQ queue TESS uses, by role. The Redis key prefix comes from config (`<REDIS_PREFIX>:bull`). */
export const QUEUE_NAMES = { crypto: 'crypto', follow: 'follow' } as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/**
 * Job name -> payload, shared by the producer (gateway) and the consumer (crypto worker).
 * Payloads hold references only: never file bytes, keys or secrets.
 */
export interface JobPayloads {
  'encrypt-file': EncryptFilePayload;
  'follow-file': EncryptFilePayload;
  'prune-versions': PruneVersionsPayload;
  'delete-user': DeleteUserPayload;
}
export type JobName = keyof JobPayloads;

/** Job name -> what its handler returns (BullMQ's `returnvalue`, and the `completed` event). */
export interface JobResults {
  'encrypt-file': EncryptFileResult;
  'follow-file': EncryptFileResult;
  'prune-versions': PruneVersionsResult;
  'delete-user': DeleteUserResult;
}

/** The payload of job `N`. */
export type JobOf<N extends JobName> = JobPayloads[N];
/** The result of job `N`. */
export type JobResultOf<N extends JobName> = JobResults[N];

/** The queue each job runs on. */
export const JOB_QUEUES: { readonly [N in JobName]: QueueName } = {
  'encrypt-file': QUEUE_NAMES.crypto,
  // Followers wait on slow clients: never in the slots that sealed uploads need.
  'follow-file': QUEUE_NAMES.follow,
  'prune-versions': QUEUE_NAMES.crypto,
  'delete-user': QUEUE_NAMES.crypto,
};

/** Runtime checks of what crosses Redis, per job name: payloads in the worker, results in the gateway. */
export const JOB_GUARDS: {
  readonly [N in JobName]: {
    payload: (value: unknown) => value is JobPayloads[N];
    result: (value: unknown) => value is JobResults[N];
  };
} = {
  'encrypt-file': { payload: isEncryptFilePayload, result: isEncryptFileResult },
  'follow-file': { payload: isEncryptFilePayload, result: isEncryptFileResult },
  'prune-versions': { payload: isPruneVersionsPayload, result: isPruneVersionsResult },
  'delete-user': { payload: isDeleteUserPayload, result: isDeleteUserResult },
};

/** True for the name of a job TESS knows (BullMQ job names are plain strings). */
export function isJobName(name: string): name is JobName {
  return Object.hasOwn(JOB_GUARDS, name);
}

/**
 * The result of a completed job of `name` as BullMQ reports it (a JSON string or a value), or undefined
 * when it is not one.
 */
export function jobResultOf<N extends JobName>(name: N, returnvalue: unknown): JobResults[N] | undefined {
  let value = returnvalue;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const isResult: (value: unknown) => value is JobResults[N] = JOB_GUARDS[name].result;
  return isResult(value) ? value : undefined;
}

/**
 * BullMQ options every producer gives a job (the gateway's uploads and the worker's reconciler): retries
 * with exponential backoff, finished jobs kept a while for the job API.
 */
export function defaultJobOptions(config: Pick<TessConfig, 'worker'>) {
  return {
    attempts: config.worker.jobAttempts,
    backoff: { type: 'exponential', delay: 2_000 },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  } as const;
}

/**
 * Options of every job on `queue`: the crypto queue's retries and history (defaultJobOptions); a follower
 * runs once and leaves nothing behind (a follower that gave up is no failure: the file goes the normal way).
 */
export function queueJobOptions(config: Pick<TessConfig, 'worker'>, queue: QueueName) {
  if (queue === QUEUE_NAMES.follow)
    return { attempts: 1, removeOnComplete: true, removeOnFail: true } as const;
  return defaultJobOptions(config);
}

/** The BullMQ key prefix for an installation. */
export function bullPrefix(redisPrefix: string): string {
  return `${redisPrefix}:bull`;
}
