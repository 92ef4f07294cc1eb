import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  bullPrefix,
  isJobName,
  JOB_GUARDS,
  type JobName,
  type JobPayloads,
  type JobResults,
  QUEUE_NAMES,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
} from '#common';
import { checkEvictionPolicy } from './eviction-policy.js';
import { type HandlerJob, JOB_HANDLERS, type JobHandler, type JobHandlers } from './job-handler.js';
import { JobLocks } from './job-locks.js';

/**
 * The BullMQ worker on the crypto queue. It dispatches each job to the handler of its name (see
 * JobHandlers) after checking its payload, takes the handler's lock if it names one, and on failure lets
 * the handler record it before rethrowing. SIGTERM lets active jobs finish within WORKER_SHUTDOWN_TIMEOUT,
 * then hands the rest back (they stall and another worker re-runs them).
 */
@Injectable()
export class CryptoWorkerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('CryptoWorker');
  private worker?: Worker;
  private connection?: Redis;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    @Inject(JOB_HANDLERS) private readonly handlers: JobHandlers,
    private readonly locks: JobLocks,
    private readonly metrics: TessMetrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Workers block on Redis; BullMQ requires maxRetriesPerRequest: null on their connection.
    this.connection = new Redis(this.config.redis.url, { maxRetriesPerRequest: null });
    this.connection.on('error', (error) => this.logger.warn(`Redis: ${error.message}`));
    await checkEvictionPolicy(this.connection, this.logger);
    const lockDuration = this.config.worker.lockDurationMs;
    this.worker = new Worker(QUEUE_NAMES.crypto, (job, _token, signal) => this.process(job, signal), {
      connection: this.connection,
      prefix: bullPrefix(this.config.redis.prefix),
      concurrency: this.config.worker.concurrency,
      lockDuration,
      stalledInterval: Math.max(1_000, Math.floor(lockDuration / 2)),
      maxStalledCount: 2,
    });
    this.worker.on('error', (error) => this.logger.warn(`Worker: ${error.message}`));
    await this.worker.waitUntilReady();
    this.logger.log(
      `Processing queue "${QUEUE_NAMES.crypto}" with concurrency ${this.config.worker.concurrency}`,
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (!this.worker) return;
    const deadline = this.config.worker.shutdownTimeoutMs;
    this.logger.log(`Shutting down: waiting up to ${deadline} ms for active jobs`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.worker.close().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), deadline);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn('Active jobs did not finish in time; handing them back to the queue');
      await this.worker.close(true);
    }
    this.connection?.disconnect();
  }

  /** True while the worker is connected and running (readiness). */
  isRunning(): boolean {
    return Boolean(this.worker?.isRunning()) && this.connection?.status === 'ready';
  }

  private async process(job: Job, signal?: AbortSignal): Promise<unknown> {
    const timer = this.metrics.jobDuration.startTimer();
    try {
      if (!isJobName(job.name)) throw new UnrecoverableError(`No handler for job "${job.name}"`);
      const { result, outcome } = await this.dispatch(job.name, job, signal);
      timer({ outcome });
      return result;
    } catch (error) {
      timer({ outcome: 'failed' });
      this.metrics.jobFailures.inc({ reason: error instanceof Error ? error.name : 'Error' });
      throw error;
    }
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
    const run = async (): Promise<JobResults[N]> => {
      try {
        return await handler.run(job, signal);
      } catch (error) {
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
      const result = await this.locks.exclusive(lockName, signal, () => {
        locked = true;
        return run();
      });
      return { result, outcome: handler.outcome(result) };
    } catch (error) {
      // Could not take the lock (database unreachable): BullMQ retries; only a final failure is recorded.
      if (!locked) throw await this.recordFailure(handler, job, attempts, error, false);
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
