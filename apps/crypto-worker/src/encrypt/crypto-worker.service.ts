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
  type EncryptFileResult,
  type JobName,
  QUEUE_NAMES,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
} from '#common';
import { type EncryptFileJob, EncryptFileService } from './encrypt-file.service.js';
import { checkEvictionPolicy } from './eviction-policy.js';
import { FileLocks } from './file-lock.js';

type Handler = (job: Job, signal?: AbortSignal) => Promise<EncryptFileResult>;

/**
 * The BullMQ worker on the crypto queue. Every job name has exactly one handler (the map is checked
 * by the compiler against the shared JobName union). Handlers never swallow errors: a failure is
 * recorded on the file row and rethrown so BullMQ retries with backoff, or gives up for
 * UnrecoverableError. SIGTERM lets active jobs finish within WORKER_SHUTDOWN_TIMEOUT, then hands the
 * rest back (they stall and another worker re-runs them).
 */
@Injectable()
export class CryptoWorkerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('CryptoWorker');
  private worker?: Worker;
  private connection?: Redis;
  private readonly handlers: Record<JobName, Handler>;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly encryptFile: EncryptFileService,
    private readonly locks: FileLocks,
    private readonly metrics: TessMetrics,
  ) {
    this.handlers = {
      'encrypt-file': (job, signal) => this.encryptFile.run(job as EncryptFileJob, signal),
    };
  }

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

  private async process(job: Job, signal?: AbortSignal): Promise<EncryptFileResult> {
    const timer = this.metrics.jobDuration.startTimer();
    try {
      const result = await this.runLocked(job, signal);
      timer({ outcome: result.skipped ? 'skipped' : 'stored' });
      return result;
    } catch (error) {
      timer({ outcome: 'failed' });
      this.metrics.jobFailures.inc({ reason: error instanceof Error ? error.name : 'Error' });
      throw error;
    }
  }

  private async runLocked(job: Job, signal?: AbortSignal): Promise<EncryptFileResult> {
    const handler = this.handlers[job.name as JobName];
    if (!handler) throw new UnrecoverableError(`No handler for job "${job.name}"`);
    const fileId = (job.data as { fileId?: unknown }).fileId;
    if (typeof fileId !== 'string' || !fileId) throw new UnrecoverableError('The job names no file');
    let locked = false;
    try {
      // The run and the recording of its failure happen under the file's lock, so a duplicate delivery
      // of the same file waits instead of interleaving with this run.
      return await this.locks.exclusive(fileId, signal, async () => {
        locked = true;
        try {
          return await handler(job, signal);
        } catch (error) {
          throw await this.recordFailure(job, error, true);
        }
      });
    } catch (error) {
      // Could not take the lock (database unreachable): BullMQ retries; only a final failure is recorded.
      if (!locked) throw await this.recordFailure(job, error, false);
      throw error;
    }
  }

  private async recordFailure(job: Job, error: unknown, always: boolean): Promise<Error> {
    const err = error instanceof Error ? error : new Error(String(error));
    const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    this.logger.warn(
      `job ${job.id} file ${(job.data as { fileId?: string }).fileId} attempt ${job.attemptsMade + 1} failed` +
        `${final ? ' for good' : ''}: ${err.message}`,
    );
    if (always || final) {
      await this.encryptFile
        .recordFailure(job as EncryptFileJob, err, final)
        .catch((recordError: Error) =>
          this.logger.error(`Could not record the failure of job ${job.id}: ${recordError.message}`),
        );
    }
    return err;
  }
}
