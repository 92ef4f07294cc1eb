import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  type DeleteUserResult,
  type FileEntity,
  FileRepository,
  FileVersionRepository,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  removeFileData,
  TESS_CONFIG,
  type TessConfig,
  UserRepository,
} from '#common';
import type { HandlerJob, JobHandler } from '../jobs/job-handler.js';

const BATCH = 100;

/**
 * Deletes a user the admin asked to delete (docs/security.md item 37). The gateway already set the
 * account `deleting` (nothing of it works any more) and ended its sessions. Each file goes as a user's
 * own delete does (row first, so a running encrypt job fails to commit and cleans up; then the object,
 * the data key, the staging file), then the account row, whose tokens, factors and share links cascade;
 * its audit events stay, with `user_id` NULL and their chain intact. Idempotent: a retry or a second
 * delivery carries on from what is left.
 */
@Injectable()
export class DeleteUserHandler implements JobHandler<'delete-user'> {
  private readonly logger = new Logger(DeleteUserHandler.name);

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly users: UserRepository,
    private readonly files: FileRepository,
    private readonly versions: FileVersionRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
  ) {}

  lockName({ userId }: HandlerJob<'delete-user'>['data']): string {
    return `delete-user:${userId}`;
  }

  async run(job: HandlerJob<'delete-user'>, signal?: AbortSignal): Promise<DeleteUserResult> {
    const { userId, requestedBy } = job.data;
    const user = await this.users.findById(userId);
    if (!user) return { userId, deletedFiles: 0, skipped: true };
    if (user.status !== 'deleting') throw new Error(`User ${userId} is ${user.status}, not deleting`);
    let deletedFiles = 0;
    for (;;) {
      signal?.throwIfAborted();
      const batch = await this.files.batchOfOwner(userId, BATCH);
      if (batch.length === 0) break;
      for (const file of batch) await this.deleteFile(file);
      deletedFiles += batch.length;
    }
    await this.users.delete(userId);
    await this.audit.record({
      action: 'admin.user_deleted',
      userId: requestedBy,
      details: { targetId: userId, targetUsername: user.username, files: deletedFiles },
    });
    this.logger.log(`user ${userId}: deleted with ${deletedFiles} file(s)`);
    return { userId, deletedFiles };
  }

  /** As FilesService.delete: every version's object and key, and new versions still on their way. */
  private async deleteFile(file: FileEntity): Promise<void> {
    const versions = await this.versions.objectsOf(file.id);
    const uploads = await this.files.uploadsOfVersions(file.id);
    await this.files.delete(file.id);
    await removeFileData({ store: this.store, keys: this.keys, tempDir: this.config.tempDir }, file, {
      versions,
      uploads,
    });
  }

  /** Nothing to record on the account: the admin sees the job's failure and reason, and may retry it. */
  async onFailed(job: HandlerJob<'delete-user'>, error: Error, final: boolean): Promise<void> {
    this.logger.warn(`delete-user ${job.data.userId}${final ? ' gave up' : ''}: ${error.message}`);
  }

  outcome(result: DeleteUserResult): string {
    return result.skipped ? 'skipped' : 'deleted';
  }
}
