import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  type OnApplicationBootstrap,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  AdminUserRepository,
  type AdminUserRow,
  AuditRepository,
  type ConfiguredKeyProvider,
  deleteUserJobId,
  FileRepository,
  isJobName,
  KEY_PROVIDER,
  MfaRepository,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { destroyTotpKey } from '../auth/totp.js';
import { UserSessionsService } from '../auth/user-sessions.service.js';
import { EventsGateway } from '../events/events.gateway.js';
import { JobQueue } from '../infra/job-queue.js';

/** How many users a page of the admin's list shows. */
export const ADMIN_USERS_PAGE = 50;
/** How many failed jobs the system view lists. */
export const ADMIN_FAILED_JOBS = 50;

/** A failed job as the admin sees it: what it was for and why it failed, never a file's bytes. */
export function failedJobView(job: Job) {
  const data = (job.data ?? {}) as Record<string, unknown>;
  return {
    id: job.id ?? '',
    name: job.name,
    fileId: typeof data.fileId === 'string' ? data.fileId : null,
    userId:
      typeof data.ownerId === 'string' ? data.ownerId : typeof data.userId === 'string' ? data.userId : null,
    failedReason: job.failedReason ?? '',
    attemptsMade: job.attemptsMade,
    finishedAt: job.finishedOn ? new Date(job.finishedOn) : null,
  };
}
export type FailedJobView = ReturnType<typeof failedJobView>;

/** A worker connection BullMQ lists for the queue. */
export function workerView(client: Record<string, string>) {
  return {
    name: client.name ?? '',
    addr: client.addr ?? '',
    ageSeconds: Number(client.age ?? 0),
    idleSeconds: Number(client.idle ?? 0),
  };
}

export interface QuotaInput {
  /** null: follow QUOTA_BYTES; 0: no limit. */
  quotaBytes: number | null;
  /** null: follow QUOTA_FILES; 0: no limit. */
  quotaFiles: number | null;
}

/**
 * What admins do to accounts and jobs (docs/security.md item 37). Every action is an audit event in the
 * admin's own chain naming the target (`targetId`, `targetUsername`); the account-level ones the user
 * must know about (a reset second factor) are also recorded in the user's chain. Nothing here reads a
 * file's content: the admin side sees metadata only.
 */
@Injectable()
export class AdminService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Admin');

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly users: AdminUserRepository,
    private readonly files: FileRepository,
    private readonly mfa: MfaRepository,
    private readonly audit: AuditRepository,
    private readonly sessions: UserSessionsService,
    private readonly events: EventsGateway,
    private readonly jobs: JobQueue,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
  ) {}

  /** ADMIN_USERNAMES: promotes the named accounts that exist, at every start (one UPDATE). */
  async onApplicationBootstrap(): Promise<void> {
    const names = this.config.admin.usernames;
    if (names.length === 0) return;
    const promoted = await this.users.promote(names);
    for (const user of promoted) {
      await this.audit.record({
        action: 'admin.promoted',
        userId: user.id,
        details: { by: 'ADMIN_USERNAMES' },
      });
      this.logger.log(`ADMIN_USERNAMES: ${user.username} is an admin now`);
    }
  }

  list(search: string | undefined, page: number): Promise<{ items: AdminUserRow[]; total: number }> {
    return this.users.list({ search, limit: ADMIN_USERS_PAGE, offset: (page - 1) * ADMIN_USERS_PAGE });
  }

  async user(id: string): Promise<AdminUserRow> {
    const user = await this.users.find(id);
    if (!user) throw new NotFoundException('No such user.');
    return user;
  }

  private async target(admin: Express.User, id: string, action: string): Promise<AdminUserRow> {
    const user = await this.user(id);
    if (user.id === admin.id) throw new BadRequestException(`You cannot ${action} your own account.`);
    return user;
  }

  private record(
    action: Parameters<AuditRepository['record']>[0]['action'],
    admin: Express.User,
    target: AdminUserRow,
    ip: string | undefined,
    details: Record<string, string | number | boolean | null> = {},
  ): Promise<void> {
    return this.audit.record({
      action,
      userId: admin.id,
      ip,
      details: { targetId: target.id, targetUsername: target.username, ...details },
    });
  }

  /** Every session, token and socket of the user stops working now (next request 401). */
  async disable(admin: Express.User, id: string, ip?: string): Promise<void> {
    const user = await this.target(admin, id, 'disable');
    if (!(await this.users.setStatus(id, 'disabled', ['active'])))
      throw new ConflictException(`The account is ${user.status}, not active.`);
    const endedSessions = await this.cutOff(id);
    await this.record('admin.user_disabled', admin, user, ip, { endedSessions });
  }

  async enable(admin: Express.User, id: string, ip?: string): Promise<void> {
    const user = await this.target(admin, id, 'enable');
    if (!(await this.users.setStatus(id, 'active', ['disabled'])))
      throw new ConflictException(`The account is ${user.status}, not disabled.`);
    await this.record('admin.user_enabled', admin, user, ip);
  }

  /** Quota overrides; they apply to the user's next upload. */
  async setQuota(admin: Express.User, id: string, quota: QuotaInput, ip?: string): Promise<AdminUserRow> {
    const user = await this.user(id);
    await this.users.setQuota(id, quota.quotaBytes, quota.quotaFiles);
    await this.record('admin.quota_changed', admin, user, ip, {
      quotaBytes: quota.quotaBytes,
      quotaFiles: quota.quotaFiles,
    });
    return this.user(id);
  }

  /** Removes the user's second factors and recovery codes (they sign in with the password, and can enrol again). */
  async resetMfa(admin: Express.User, id: string, ip?: string): Promise<boolean> {
    const user = await this.user(id);
    const removed = await this.removeFactor(id);
    await this.audit.record({
      action: 'mfa.reset',
      userId: id,
      ip,
      details: { by: 'admin', adminId: admin.id, adminUsername: admin.username, removed },
    });
    await this.record('admin.mfa_reset', admin, user, ip, { removed });
    return removed;
  }

  /**
   * Step two of deleting an account (the first is the confirmation page or the API's `confirm`): the
   * username typed again must match. The account is set `deleting` (nothing of it works from now on), its
   * second factor's key destroyed, and the delete-user job enqueued; the worker removes the files, then
   * the account. Asking again while it is `deleting` enqueues again (idempotent job id).
   */
  async requestDelete(admin: Express.User, id: string, confirm: string, ip?: string): Promise<void> {
    const user = await this.target(admin, id, 'delete');
    if (confirm.trim().toLowerCase() !== user.username.toLowerCase())
      throw new BadRequestException(`Type the username (${user.username}) to confirm the deletion.`);
    await this.users.setStatus(id, 'deleting', ['active', 'disabled', 'deleting']);
    await this.cutOff(id);
    await this.removeFactor(id);
    try {
      await this.jobs.enqueue(
        'delete-user',
        { userId: id, requestedBy: admin.id },
        { jobId: deleteUserJobId(id) },
      );
    } catch (error) {
      this.logger.error(`Could not enqueue the deletion of user ${id}: ${(error as Error).message}`);
      throw new ServiceUnavailableException(
        'The job queue is unavailable; the account stays disabled. Ask again in a moment.',
      );
    }
    await this.record('admin.user_delete_requested', admin, user, ip, { files: user.files });
  }

  async system() {
    const [totals, counts, failed, workers] = await Promise.all([
      this.files.totals(),
      this.jobs.counts().catch(() => null),
      this.jobs.failed(ADMIN_FAILED_JOBS).catch(() => [] as Job[]),
      this.jobs.workers().catch(() => [] as Array<Record<string, string>>),
    ]);
    return {
      storage: { storedBytes: totals.storedBytes, encryptedBytes: totals.encryptedBytes },
      filesByStatus: totals.byStatus,
      queue: counts,
      failedJobs: failed.map(failedJobView),
      workers: workers.map(workerView),
    };
  }

  private async failedJob(jobId: string): Promise<Job> {
    const job = await this.jobs.job(jobId).catch(() => {
      throw new ServiceUnavailableException('The job queue is unavailable right now.');
    });
    if (!job || !isJobName(job.name)) throw new NotFoundException('No such job.');
    if (!(await job.isFailed()))
      throw new ConflictException('Only a failed job can be retried or discarded.');
    return job;
  }

  /** Runs a failed job again (its attempts start over); an encrypt-file job reads the kept staging file. */
  async retryJob(admin: Express.User, jobId: string, ip?: string): Promise<void> {
    const job = await this.failedJob(jobId);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    await this.audit.record({
      action: 'admin.job_retried',
      userId: admin.id,
      ip,
      details: { jobId, job: job.name, ...failedJobTargets(job) },
    });
  }

  /** Removes a failed job from the queue (the file stays `failed`; its owner may delete it). */
  async discardJob(admin: Express.User, jobId: string, ip?: string): Promise<void> {
    const job = await this.failedJob(jobId);
    await job.remove();
    await this.audit.record({
      action: 'admin.job_discarded',
      userId: admin.id,
      ip,
      details: { jobId, job: job.name, ...failedJobTargets(job) },
    });
  }

  private async cutOff(userId: string): Promise<number> {
    const ended = await this.sessions.endAll(userId);
    this.events.disconnectUser(userId);
    return ended;
  }

  /** Every second factor of the user (TOTP with its data key, passkeys, recovery codes). */
  private async removeFactor(userId: string): Promise<boolean> {
    const { totp, passkeys } = await this.mfa.removeAll(userId);
    if (totp) await destroyTotpKey(this.keys, userId, totp);
    return totp !== null || passkeys > 0;
  }
}

function failedJobTargets(job: Job): Record<string, string | null> {
  const view = failedJobView(job);
  return { fileId: view.fileId, targetId: view.userId };
}
