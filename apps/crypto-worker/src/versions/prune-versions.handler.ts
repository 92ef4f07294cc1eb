import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Queue } from 'bullmq';
import {
  FileVersionRepository,
  type PruneVersionsResult,
  TESS_CONFIG,
  type TessConfig,
  VersionRemover,
} from '#common';
import type { HandlerJob, JobHandler } from '../jobs/job-handler.js';
import { openProducerQueue } from '../jobs/producer-queue.js';

/** Versions removed per page of a run. */
const PAGE = 200;
/** The BullMQ job scheduler id: one schedule for the whole installation, whatever the replica count. */
export const PRUNE_SCHEDULER_ID = 'prune-versions';

/**
 * Version retention (VERSIONS_KEEP, VERSIONS_MAX_AGE; docs/security.md item 38). Every worker replica
 * upserts the same BullMQ job scheduler at start (`upsertJobScheduler` with one id is idempotent), so one
 * `prune-versions` job is produced per VERSIONS_PRUNE_INTERVAL across replicas, not a timer per replica;
 * after a new version is stored the worker also queues a run for that file alone. Runs share one lock, so
 * they never overlap. Each removal is a VersionRemover call (row, then the object and key unless a
 * restored copy shares them), audited `file.version_deleted` with reason `retention:keep|max-age`.
 */
@Injectable()
export class PruneVersionsHandler
  implements JobHandler<'prune-versions'>, OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger('PruneVersions');
  private producer?: ReturnType<typeof openProducerQueue>;
  private queue?: Queue;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly versions: FileVersionRepository,
    private readonly remover: VersionRemover,
  ) {}

  onApplicationBootstrap(): void {
    this.producer = openProducerQueue(this.config);
    this.queue = this.producer.queue;
    // Not awaited: a Redis that is down at start must not hold the worker up (BullMQ retries meanwhile).
    void this.queue
      .upsertJobScheduler(
        PRUNE_SCHEDULER_ID,
        { every: this.config.versions.pruneIntervalMs },
        { name: 'prune-versions', data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } },
      )
      .catch((error: Error) => this.logger.warn(`Could not schedule version retention: ${error.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.producer?.close();
  }

  /** Queues a retention run for one file (after a new version of it was stored); best effort. */
  async pruneSoon(fileId: string): Promise<void> {
    await this.queue
      ?.add(
        'prune-versions',
        { fileId },
        { jobId: `prune-versions-${fileId}`, removeOnComplete: true, removeOnFail: true },
      )
      .catch((error: Error) => this.logger.warn(`Could not queue retention for ${fileId}: ${error.message}`));
  }

  lockName(): string {
    return 'prune-versions';
  }

  outcome(result: PruneVersionsResult): string {
    return result.removed ? 'pruned' : 'nothing';
  }

  async run(job: HandlerJob<'prune-versions'>): Promise<PruneVersionsResult> {
    const { keep, maxAgeMs } = this.config.versions;
    let removed = 0;
    for (;;) {
      const page = await this.versions.expired(keep, maxAgeMs, PAGE, job.data.fileId);
      let progressed = 0;
      for (const version of page) {
        const ranked = await this.versions.list(version.fileId);
        const rank = ranked.findIndex((v) => v.version === version.version);
        const rule = rank >= keep ? 'keep' : 'max-age';
        const outcome = await this.remover.remove(version.fileId, version.version, {
          reason: 'retention',
          rule,
        });
        if (typeof outcome !== 'string') {
          removed++;
          progressed++;
        }
      }
      if (page.length < PAGE || progressed === 0) break;
    }
    if (removed) this.logger.log(`Removed ${removed} version(s) past retention (keep ${keep})`);
    return { removed };
  }

  async onFailed(_job: HandlerJob<'prune-versions'>, error: Error): Promise<void> {
    this.logger.warn(`Version retention failed: ${error.message}`);
  }
}
