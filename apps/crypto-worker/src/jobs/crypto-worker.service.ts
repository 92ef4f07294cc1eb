import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import {
  bullPrefix,
  isDatabaseUnavailable,
  isJobName,
  JOB_GUARDS,
  type JobName,
  type JobPayloads,
  type JobResults,
  QUEUE_NAMES,
  type QueueName,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
  withTimeout,
} from '#common';
import { checkEvictionPolicy } from './eviction-policy.js';
import { type HandlerJob, JOB_HANDLERS, type JobHandler, type JobHandlers } from './job-handler.js';
import { type HeldLock, JobLocks, LockLostError } from './job-locks.js';

/** While PostgreSQL is unavailable: how often the paused worker asks again, and a job waits between tries. */
const OUTAGE_PROBE_MS = 1_000;
const OUTAGE_RETRY_MS = 2_000;
/** Outage delays a job may take before its tries count as attempts again (about 15 minutes of outage). */
const MAX_OUTAGE_DELAYS = 450;

/**
 * The BullMQ worker on the crypto queue. It dispatches each job to the handler of its name (see
 * JobHandlers) after checking its payload, takes the handler's lock if it names one, and on failure lets
 * the handler record it before rethrowing. SIGTERM lets active jobs finish within WORKER_SHUTDOWN_TIMEOUT,
 * then hands the rest back (they stall and another worker re-runs them).
 *
 * PostgreSQL outages (docs/security.md item 34): a job that fails because the database is unreachable is
 * moved back to `delayed` without spending an attempt (BullMQ's moveToDelayed), nothing is recorded (it
 * cannot be), and the worker pauses taking new jobs until `SELECT 1` answers again, then resumes by
 * itself. The process never exits for it. A run that loses its file lock's session is stopped by the
 * lock's signal and records nothing (another run may own the file); its retry converges.
 */
@Injectable()
export class CryptoWorkerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('CryptoWorker');
  private worker?: Worker;
  /** Followers of uploads still arriving (docs/security.md item 40), apart from the crypto queue's slots. */
  private follower?: Worker;
  private connection?: Redis;
  private followConnection?: Redis;
  /** Set while the worker is paused for a database outage (the probe that resumes it). */
  private outage?: Promise<void>;
  private stopped = false;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    @Inject(JOB_HANDLERS) private readonly handlers: JobHandlers,
    private readonly locks: JobLocks,
    private readonly metrics: TessMetrics,
    private readonly dataSource: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const crypto = await this.startQueue(QUEUE_NAMES.crypto, this.config.worker.concurrency, {
      maxStalledCount: 2,
      // The token lets a job that a database outage interrupted move itself back to `delayed` (process()).
      processor: (job, token, signal) => this.process(job, token, signal),
      beforeStart: (connection) => checkEvictionPolicy(connection, this.logger),
    });
    this.connection = crypto.connection;
    this.worker = crypto.worker;
    if (this.config.pipeline.minBytes > 0) {
      // The follower queue (FollowFileHandler): its own connection and concurrency (PIPELINE_CONCURRENCY),
      // so followers waiting on slow clients never hold the slots sealed uploads need. A follower never
      // fails, retries or waits out an outage (no token): it stores the file or leaves it to encrypt-file.
      const follow = await this.startQueue(QUEUE_NAMES.follow, this.config.pipeline.concurrency, {
        maxStalledCount: 1,
        processor: (job, _token, signal) => this.process(job, undefined, signal),
      });
      this.followConnection = follow.connection;
      this.follower = follow.worker;
    }
  }

  /** A BullMQ worker on `queue` with a connection of its own (workers block on Redis). */
  private async startQueue(
    queue: QueueName,
    concurrency: number,
    options: {
      maxStalledCount: number;
      processor: (job: Job, token: string | undefined, signal: AbortSignal | undefined) => Promise<unknown>;
      beforeStart?: (connection: Redis) => Promise<unknown>;
    },
  ): Promise<{ connection: Redis; worker: Worker }> {
    // BullMQ requires maxRetriesPerRequest: null on a worker's connection.
    const connection = new Redis(this.config.redis.url, { maxRetriesPerRequest: null });
    connection.on('error', (error) => this.logger.warn(`Redis: ${error.message}`));
    await options.beforeStart?.(connection);
    const lockDuration = this.config.worker.lockDurationMs;
    const worker = new Worker(queue, options.processor, {
      connection,
      prefix: bullPrefix(this.config.redis.prefix),
      concurrency,
      lockDuration,
      stalledInterval: Math.max(1_000, Math.floor(lockDuration / 2)),
      maxStalledCount: options.maxStalledCount,
    });
    worker.on('error', (error) => this.logger.warn(`Worker: ${error.message}`));
    await worker.waitUntilReady();
    this.logger.log(`Processing queue "${queue}" with concurrency ${concurrency}`);
    return { connection, worker };
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    // Followers drain like jobs: one that finishes stores its file, one that gives up leaves it to the
    // encrypt-file job, which this worker or another runs.
    const workers = [this.worker, this.follower].filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) return;
    const deadline = this.config.worker.shutdownTimeoutMs;
    this.logger.log(`Shutting down: waiting up to ${deadline} ms for active jobs`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(workers.map((worker) => worker.close())).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), deadline);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn('Active jobs did not finish in time; handing them back to the queue');
      await Promise.all(workers.map((worker) => worker.close(true)));
    }
    this.connection?.disconnect();
    this.followConnection?.disconnect();
  }

  /** True while the worker is connected and running, or paused for a database outage (readiness). */
  isRunning(): boolean {
    return (
      (Boolean(this.worker?.isRunning()) || this.outage !== undefined) && this.connection?.status === 'ready'
    );
  }

  /** True while job intake is paused because PostgreSQL does not answer. */
  isPausedForDatabase(): boolean {
    return this.outage !== undefined;
  }

  private async process(job: Job, token?: string, signal?: AbortSignal): Promise<unknown> {
    const timer = this.metrics.jobDuration.startTimer();
    try {
      if (!isJobName(job.name)) throw new UnrecoverableError(`No handler for job "${job.name}"`);
      const { result, outcome } = await this.dispatch(job.name, job, signal);
      timer({ outcome });
      return result;
    } catch (error) {
      timer({ outcome: 'failed' });
      this.metrics.jobFailures.inc({ reason: error instanceof Error ? error.name : 'Error' });
      if (error instanceof LockLostError) this.logger.warn(`job ${job.id}: ${error.message}`);
      // A lock session also dies when the whole server goes away: that is an outage, not a failed try.
      const outage = await this.isOutage(error);
      if (outage && token && job.attemptsStarted <= MAX_OUTAGE_DELAYS) {
        this.pauseForDatabase((error as Error).message);
        this.logger.warn(`job ${job.id}: PostgreSQL unavailable; trying again once it answers`);
        await job.moveToDelayed(Date.now() + OUTAGE_RETRY_MS, token);
        throw new DelayedError();
      }
      throw error;
    }
  }

  /**
   * Whether `error` means PostgreSQL is down: it looks like it (a connection error, an unavailable
   * SQLSTATE, a lost lock session) and the database does not answer a probe. The probe keeps other
   * network failures (clamd refusing connections, an S3 socket reset) from passing for an outage.
   */
  private async isOutage(error: unknown): Promise<boolean> {
    if (!isDatabaseUnavailable(error) && !(error instanceof LockLostError)) return false;
    return !(await this.databaseAnswers());
  }

  private async databaseAnswers(): Promise<boolean> {
    try {
      await withTimeout(this.dataSource.query('SELECT 1'), OUTAGE_PROBE_MS * 2);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops taking jobs until PostgreSQL answers again (active jobs go on and fail over on their own). */
  private pauseForDatabase(reason: string): void {
    if (this.outage || !this.worker || this.stopped) return;
    const worker = this.worker;
    this.logger.warn(`PostgreSQL is unavailable (${reason}); pausing job intake until it answers`);
    void worker.pause(true);
    this.outage = (async () => {
      for (;;) {
        await new Promise((r) => setTimeout(r, OUTAGE_PROBE_MS));
        if (this.stopped) return;
        // Until then still down; the pool reconnects by itself once it is back.
        if (await this.databaseAnswers()) break;
      }
      this.logger.log('PostgreSQL answers again; resuming job intake');
      this.outage = undefined;
      await worker.resume();
    })();
  }

  private async dispatch<N extends JobName>(
    name: N,
    raw: Job,
    signal?: AbortSignal,
  ): Promise<{ result: JobResults[N]; outcome: string }> {
    const handler: JobHandler<N> = this.handlers[name];
    const isPayload: (value: unknown) => value is JobPayloads[N] = JOB_GUARDS[name].payload;
    const data: unknown = raw.data;
    if (!isPayload(data)) throw new UnrecoverableError(`The ${name} job ${raw.id} has no valid payload`);
    const job: HandlerJob<N> = {
      id: raw.id ?? '',
      name,
      data,
      attemptsMade: raw.attemptsMade,
      updateProgress: (progress) => raw.updateProgress(progress),
    };
    const attempts = raw.opts.attempts ?? 1;
    const run = async (held?: HeldLock): Promise<JobResults[N]> => {
      try {
        return await handler.run(held ? { ...job, fence: held.fence } : job, held?.signal ?? signal);
      } catch (error) {
        // Lost the lock: another run may own the file now, so its state is not ours to record.
        if (held?.signal.reason instanceof LockLostError) throw held.signal.reason;
        if (error instanceof LockLostError) throw error;
        // Nothing can be recorded while the database is down; process() puts the job back.
        if (await this.isOutage(error)) throw error;
        throw await this.recordFailure(handler, job, attempts, error, true);
      }
    };
    const lockName = handler.lockName?.(data);
    if (lockName === undefined) {
      const result = await run();
      return { result, outcome: handler.outcome(result) };
    }
    let locked = false;
    try {
      // A duplicate delivery waits for the lock instead of interleaving with this run.
      const result = await this.locks.exclusive(lockName, signal, (held) => {
        locked = true;
        return run(held);
      });
      return { result, outcome: handler.outcome(result) };
    } catch (error) {
      // Could not take the lock: BullMQ retries (a database outage without spending an attempt); only a
      // final failure is recorded.
      if (!locked && !(await this.isOutage(error))) {
        throw await this.recordFailure(handler, job, attempts, error, false);
      }
      throw error;
    }
  }

  private async recordFailure<N extends JobName>(
    handler: JobHandler<N>,
    job: HandlerJob<N>,
    attempts: number,
    error: unknown,
    always: boolean,
  ): Promise<Error> {
    const err = error instanceof Error ? error : new Error(String(error));
    const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= attempts;
    this.logger.warn(
      `job ${job.id} (${job.name}) attempt ${job.attemptsMade + 1} failed${final ? ' for good' : ''}: ${err.message}`,
    );
    if (always || final) {
      await handler
        .onFailed(job, err, final)
        .catch((recordError: Error) =>
          this.logger.error(`Could not record the failure of job ${job.id}: ${recordError.message}`),
        );
    }
    return err;
  }
}
