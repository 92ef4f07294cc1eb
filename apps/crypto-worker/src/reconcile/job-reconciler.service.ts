import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import {
  AuditRepository,
  FileRepository,
  type StaleCursor,
  type StaleFile,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
} from '#common';
import { openProducerQueue } from '../jobs/producer-queue.js';
import { repeatEvery, underTryLock } from '../jobs/singleton-task.js';

/** Arbitrary constant naming the reconciler in pg_try_advisory_lock (the migrations use ...001). */
const RECONCILE_LOCK_KEY = 7_305_127_002;
/** Rows read per page of a pass. */
const PAGE = 200;
/** BullMQ states in which a job will still run: anything else (or no job) means the file lost its job. */
const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

export const STAGED_DATA_GONE =
  'The uploaded data for this file is no longer on the server and its processing job was lost; upload it again.';

export interface ReconcileReport {
  /** Stale rows looked at (queued or processing, unchanged for the grace period). */
  examined: number;
  requeued: string[];
  failed: string[];
}

/**
 * PostgreSQL's rows are the truth and BullMQ only delivers them (docs/security.md item 32). Redis can lose
 * jobs: a restart without persistence, a failover to a replica that had not caught up, a FLUSHALL, a job
 * removed by hand, or a crash between a row's insert and its enqueue. Every RECONCILE_INTERVAL (and once
 * at worker start) one worker, holding a PostgreSQL advisory lock, walks the files that are `queued` or
 * `processing` and whose row has not changed for RECONCILE_GRACE (the (status, updated_at) index: a pass
 * costs O(such rows), not O(all files)), and for each one without a live job (waiting, active, delayed,
 * prioritized):
 * - re-enqueues `encrypt-file` with the same job id (the file id), after removing a finished or failed job
 *   of that id; BullMQ never adds a second job with an existing id, and the handler is a no-op for a file
 *   that is stored by then, so a repeated or concurrent pass cannot duplicate work;
 * - or, when the staged upload is gone from TEMP_DIR, marks the file `failed` with a readable reason (only
 *   if the row is still the one it looked at) and audits it.
 * The staged upload is encrypted (docs/format.md, "Staging format"): the reconciler only checks that it is
 * there; it never reads or judges its bytes. The worker that runs the job authenticates them with the
 * file's data key, and fails the file with `staging-integrity` if they were altered.
 */
@Injectable()
export class JobReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('JobReconciler');
  private producer?: ReturnType<typeof openProducerQueue>;
  private queue?: Queue;
  private task?: { stop(): Promise<void> };

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly dataSource: DataSource,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    private readonly metrics: TessMetrics,
  ) {}

  onApplicationBootstrap(): void {
    this.producer = openProducerQueue(this.config);
    this.queue = this.producer.queue;
    this.task = repeatEvery(
      this.config.reconcile.intervalMs,
      () => this.reconcile(),
      (error) => this.logger.warn(`Reconcile pass failed: ${error.message}`),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task?.stop();
    await this.producer?.close();
  }

  /** One pass; null when another replica holds the reconciler lock. */
  reconcile(): Promise<ReconcileReport | null> {
    return underTryLock(this.dataSource, RECONCILE_LOCK_KEY, () => this.pass());
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { examined: 0, requeued: [], failed: [] };
    let after: StaleCursor | undefined;
    for (;;) {
      const page = await this.files.listStale(this.config.reconcile.graceMs, PAGE, after);
      for (const file of page) await this.repair(file, report);
      report.examined += page.length;
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.cursor;
    }
    if (report.requeued.length || report.failed.length) {
      this.logger.warn(
        `Reconciled ${report.requeued.length + report.failed.length} file(s) that had lost their job: ` +
          `${report.requeued.length} re-enqueued, ${report.failed.length} failed (staged data gone)`,
      );
    }
    return report;
  }

  private async repair(file: StaleFile, report: ReconcileReport): Promise<void> {
    const queue = this.queue!;
    const job = await queue.getJob(file.id);
    const state = job ? await job.getState() : 'missing';
    if (LIVE_STATES.has(state)) return;
    if (!(await this.stagedDataPresent(file))) {
      if (!(await this.files.markFailedIfUnchanged(file.id, file.cursor, STAGED_DATA_GONE))) return;
      await this.audit.record({
        action: 'file.failed',
        userId: file.ownerId,
        fileId: file.id,
        details: { error: STAGED_DATA_GONE, reason: 'job-lost', job: state },
      });
      this.metrics.reconciledJobs.inc({ outcome: 'failed' });
      report.failed.push(file.id);
      this.logger.warn(`file ${file.id} (${file.status}, job ${state}): staged data gone; marked failed`);
      return;
    }
    // A finished or failed job keeps its id in Redis: remove it so the same id can be added again.
    if (job) await job.remove();
    await queue.add('encrypt-file', { fileId: file.id, ownerId: file.ownerId }, { jobId: file.id });
    this.metrics.reconciledJobs.inc({ outcome: 'requeued' });
    report.requeued.push(file.id);
    this.logger.warn(`file ${file.id} (${file.status}, job ${state}): re-enqueued`);
  }

  private async stagedDataPresent(file: StaleFile): Promise<boolean> {
    const info = await stat(join(this.config.tempDir, file.tempPath ?? file.id)).catch((error) => {
      if ((error as { code?: string }).code === 'ENOENT') return null;
      throw error;
    });
    return info?.isFile() ?? false;
  }
}
