import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  bullPrefix,
  FOLLOW_HINT_TTL_SECONDS,
  type FollowHint,
  followHintKey,
  isJobProgress,
  JOB_QUEUES,
  type JobName,
  type JobPayloads,
  type JobProgress,
  QUEUE_NAMES,
  type QueueName,
  queueJobOptions,
  type TessConfig,
  withTimeout,
} from '#common';

/** Redis answers within milliseconds; while it is down, producers fail fast instead of hanging. */
const ENQUEUE_TIMEOUT_MS = 5_000;

export interface EnqueueOptions {
  /** Idempotent enqueue: a job with this id that already exists is not added twice. */
  jobId?: string;
}

/** One job to enqueue: its name, the payload that name takes, and options. */
export type JobRequest = {
  [N in JobName]: { name: N; payload: JobPayloads[N]; opts?: EnqueueOptions };
}[JobName];

/** The job states the metrics report, as BullMQ counts them. */
const COUNTED_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

/**
 * The gateway's producer side of the job queues: typed by job name, so no service or controller
 * handles a BullMQ queue (or its untyped jobs) itself.
 */
export class JobQueue {
  private readonly queues: Record<QueueName, Queue>;

  constructor(
    private readonly config: TessConfig,
    private readonly connection: Redis,
  ) {
    const queue = (name: QueueName): Queue => {
      const created = new Queue(name, {
        connection,
        prefix: bullPrefix(config.redis.prefix),
        defaultJobOptions: queueJobOptions(config, name),
      });
      created.on('error', () => undefined);
      return created;
    };
    this.queues = {
      [QUEUE_NAMES.crypto]: queue(QUEUE_NAMES.crypto),
      [QUEUE_NAMES.follow]: queue(QUEUE_NAMES.follow),
    };
  }

  /**
   * Starts a follower on an upload that is still arriving (docs/security.md item 40): a no-op while one
   * exists (job id = file id). `hint`: the wrapped key of an upload that has no row yet (multipart), kept
   * beside the job rather than in its payload. Best effort: without a follower the file goes the normal way.
   */
  async follow(fileId: string, ownerId: string, hint?: FollowHint): Promise<void> {
    if (hint) {
      await withTimeout(
        this.connection.set(
          followHintKey(this.config.redis.prefix, fileId),
          JSON.stringify(hint),
          'EX',
          FOLLOW_HINT_TTL_SECONDS,
        ),
        ENQUEUE_TIMEOUT_MS,
        `Redis did not answer within ${ENQUEUE_TIMEOUT_MS / 1000} s`,
      );
    }
    await this.enqueue('follow-file', { fileId, ownerId }, { jobId: fileId });
  }

  async enqueue<N extends JobName>(name: N, payload: JobPayloads[N], opts?: EnqueueOptions): Promise<void> {
    await this.add([{ name, payload, opts }]);
  }

  /** All jobs or none (one Redis transaction per queue): the upload of several files. */
  async enqueueMany(jobs: JobRequest[]): Promise<void> {
    await this.add(jobs);
  }

  private async add(
    jobs: Array<{ name: JobName; payload: JobPayloads[JobName]; opts?: EnqueueOptions }>,
  ): Promise<void> {
    const byQueue = new Map<QueueName, typeof jobs>();
    for (const job of jobs) {
      const queue = JOB_QUEUES[job.name];
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
    }
    await withTimeout(
      Promise.all(
        [...byQueue].map(([queue, requests]) =>
          this.queues[queue].addBulk(
            requests.map(({ name, payload, opts }) => ({ name, data: payload, opts: { ...opts } })),
          ),
        ),
      ),
      ENQUEUE_TIMEOUT_MS,
      `Redis did not answer within ${ENQUEUE_TIMEOUT_MS / 1000} s`,
    );
  }

  /** The live progress of a job, or undefined when it is gone, has reported none, or Redis is down. */
  async progressOf(name: JobName, jobId: string): Promise<JobProgress | undefined> {
    const job = await this.queues[JOB_QUEUES[name]].getJob(jobId).catch(() => undefined);
    return job && isJobProgress(job.progress) ? job.progress : undefined;
  }

  /** Removes a job that has not started (a running one is left to fail on its own); 1 if removed. */
  remove(name: JobName, jobId: string): Promise<number> {
    return this.queues[JOB_QUEUES[name]].remove(jobId);
  }

  /** Jobs of a queue by state, for the `tess_queue_jobs` gauge. */
  counts(queue: QueueName = QUEUE_NAMES.crypto): Promise<Record<string, number>> {
    return this.queues[queue].getJobCounts(...COUNTED_STATES);
  }

  /** The BullMQ queue itself, for the admin's queue dashboard (bull-board) only. */
  queue(name: QueueName = QUEUE_NAMES.crypto): Queue {
    return this.queues[name];
  }

  /** Failed jobs of a queue, newest first (the admin's system page). */
  failed(limit: number, queue: QueueName = QUEUE_NAMES.crypto): Promise<Job[]> {
    return this.queues[queue].getFailed(0, Math.max(0, limit - 1));
  }

  /** A job by id, or undefined. */
  async job(jobId: string, queue: QueueName = QUEUE_NAMES.crypto): Promise<Job | undefined> {
    return (await this.queues[queue].getJob(jobId)) ?? undefined;
  }

  /** The workers connected to a queue, as BullMQ lists them (its CLIENT LIST of worker connections). */
  workers(queue: QueueName = QUEUE_NAMES.crypto): Promise<Array<Record<string, string>>> {
    return this.queues[queue].getWorkers();
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((queue) => queue.close().catch(() => undefined)));
  }
}
