import {
  Body,
  Controller,
  Get,
  HttpException,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AuditRepository, TESS_CONFIG, type TessConfig } from '#common';
import { InvitesService, inviteView } from '../auth/invites.service.js';
import { TYPES } from '../home/activity.controller.js';
import { utcLabel } from '../home/home.controller.js';
import { csrfToken } from '../http/csrf.js';
import { parseOrThrow } from '../http/validation.js';
import { formatBytes } from '../http/views.js';
import { AdminPageGuard } from './admin.gate.js';
import { adminUsersQuerySchema, createInviteSchema, JOB_ID, uuidParam } from './admin.schemas.js';
import { ADMIN_USERS_PAGE, AdminService } from './admin.service.js';
import { AdminAudit, adminAuditQuerySchema } from './admin-audit.js';
import { QUEUE_ACTIONS_MS } from './queue-board.js';

const field = (body: unknown, name: string): string => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value.trim() : '';
};

const SIZE = /^(\d+)\s*(B|KiB|MiB|GiB|TiB)?$/i;
const UNIT: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };

/** A quota form field: empty follows the installation's default (null), else a count or a size. */
function quotaField(text: string, sizes: boolean): number | null | undefined {
  if (text === '') return null;
  const m = SIZE.exec(text);
  if (!m || (!sizes && m[2])) return undefined;
  const value = Number(m[1]) * UNIT[(m[2] ?? 'b').toLowerCase()]!;
  return Number.isSafeInteger(value) && (sizes || value <= 2_147_483_647) ? value : undefined;
}

/**
 * The admin area's pages (docs/security.md item 37), in the dashboard's look: users with their actions,
 * invites, the system (storage, statuses, queue, failed jobs, workers) and the audit search. Every form
 * is a CSRF-checked POST; results come back as a flash message on the page the action started from.
 */
@ApiExcludeController()
@Controller('admin')
@UseGuards(AdminPageGuard)
export class AdminController {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly admin: AdminService,
    private readonly invites: InvitesService,
    private readonly audit: AdminAudit,
    private readonly auditEvents: AuditRepository,
  ) {}

  private render(req: Request, res: Response, view: string, locals: Record<string, unknown>, status = 200) {
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    res.setHeader('Cache-Control', 'private, no-store');
    res.status(status).render(`pages/admin/${view}`, {
      user: req.user,
      csrfToken: csrfToken(req),
      flash,
      adminSection: view.split('-')[0],
      ...locals,
    });
  }

  /** Runs a form action; a refusal (400, 404, 409, 503) becomes a flash message, then back to `back`. */
  private async act(req: Request, res: Response, back: string, action: () => Promise<string>) {
    try {
      req.session.flash = { kind: 'success', text: await action() };
    } catch (error) {
      if (!(error instanceof HttpException)) throw error;
      req.session.flash = { kind: 'danger', text: error.message };
    }
    res.redirect(303, back);
  }

  @Get()
  root(@Res() res: Response): void {
    res.redirect(303, '/admin/users');
  }

  @Get('users')
  async users(@Req() req: Request, @Res() res: Response, @Query() query: unknown): Promise<void> {
    const q = parseOrThrow(adminUsersQuerySchema, query);
    const { items, total } = await this.admin.list(q.q || undefined, q.page);
    const pages = Math.max(1, Math.ceil(total / ADMIN_USERS_PAGE));
    const link = (page: number) =>
      `/admin/users?${new URLSearchParams({ ...(q.q ? { q: q.q } : {}), page: String(page) })}`;
    this.render(req, res, 'users', {
      title: 'Admin · Users',
      search: q.q ?? '',
      total,
      users: items.map((u) => ({ ...u, created: utcLabel(u.createdAt), lastLogin: utcLabel(u.lastLoginAt) })),
      prev: q.page > 1 ? link(q.page - 1) : null,
      next: q.page < pages ? link(q.page + 1) : null,
      page: q.page,
      pages,
    });
  }

  @Get('users/:id')
  async user(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('user')) id: string) {
    const target = await this.admin.user(id);
    const defaults = this.config.uploads;
    this.render(req, res, 'user', {
      title: `Admin · ${target.username}`,
      target: {
        ...target,
        created: utcLabel(target.createdAt),
        lastLogin: utcLabel(target.lastLoginAt),
        self: target.id === req.user!.id,
        active: target.status === 'active',
        disabled: target.status === 'disabled',
      },
      quotaBytesValue: target.quotaBytes ?? '',
      quotaFilesValue: target.quotaFiles ?? '',
      defaultBytes: defaults.quotaBytes ? formatBytes(defaults.quotaBytes) : 'no limit',
      defaultFiles: defaults.quotaFiles ? String(defaults.quotaFiles) : 'no limit',
    });
  }

  @Post('users/:id/disable')
  disable(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('user')) id: string) {
    return this.act(req, res, `/admin/users/${id}`, async () => {
      await this.admin.disable(req.user!, id, req.ip);
      return 'Account disabled: its sessions, tokens and sockets stopped working.';
    });
  }

  @Post('users/:id/enable')
  enable(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('user')) id: string) {
    return this.act(req, res, `/admin/users/${id}`, async () => {
      await this.admin.enable(req.user!, id, req.ip);
      return 'Account enabled.';
    });
  }

  @Post('users/:id/quota')
  quota(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', uuidParam('user')) id: string,
    @Body() body: unknown,
  ) {
    return this.act(req, res, `/admin/users/${id}`, async () => {
      const quotaBytes = quotaField(field(body, 'quotaBytes'), true);
      const quotaFiles = quotaField(field(body, 'quotaFiles'), false);
      if (quotaBytes === undefined || quotaFiles === undefined)
        throw new HttpException(
          'Quotas are a byte size (such as 500MiB) or a file count; empty: the default.',
          400,
        );
      await this.admin.setQuota(req.user!, id, { quotaBytes, quotaFiles }, req.ip);
      return 'Quota saved: it applies to the next upload.';
    });
  }

  @Post('users/:id/reset-mfa')
  resetMfa(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('user')) id: string) {
    return this.act(req, res, `/admin/users/${id}`, async () =>
      (await this.admin.resetMfa(req.user!, id, req.ip))
        ? 'Two-factor sign-in removed: the user signs in with the password and can set it up again.'
        : 'The user had no two-factor sign-in (recorded anyway).',
    );
  }

  /** Step one of deleting: the page that says what goes and asks for the username. */
  @Get('users/:id/delete')
  async confirmDelete(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('user')) id: string) {
    const target = await this.admin.user(id);
    this.render(req, res, 'user-delete', { title: `Admin · delete ${target.username}`, target });
  }

  /** Step two: the username typed again; the account is disabled now and deleted by a background job. */
  @Post('users/:id/delete')
  async delete(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', uuidParam('user')) id: string,
    @Body() body: unknown,
  ) {
    try {
      await this.admin.requestDelete(req.user!, id, field(body, 'confirm'), req.ip);
    } catch (error) {
      if (!(error instanceof HttpException)) throw error;
      req.session.flash = { kind: 'danger', text: error.message };
      res.redirect(303, `/admin/users/${id}/delete`);
      return;
    }
    req.session.flash = {
      kind: 'success',
      text: 'The account is disabled and is being deleted with its files in the background.',
    };
    res.redirect(303, '/admin/users');
  }

  @Get('invites')
  async invitesPage(@Req() req: Request, @Res() res: Response): Promise<void> {
    const link = req.session.inviteLink;
    if (link) delete req.session.inviteLink;
    this.render(req, res, 'invites', {
      title: 'Admin · Invites',
      mode: this.invites.mode,
      inviteMode: this.invites.mode === 'invite',
      link,
      invites: (await this.invites.list()).map((i) => ({
        ...inviteView(i),
        created: utcLabel(i.createdAt),
        expires: utcLabel(i.expiresAt),
        open: inviteView(i).state === 'open',
      })),
    });
  }

  @Post('invites')
  async createInvite(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const email = field(body, 'email');
    const expiresIn = field(body, 'expiresIn');
    await this.act(req, res, '/admin/invites', async () => {
      const input = parseOrThrow(createInviteSchema, {
        ...(email ? { email } : {}),
        ...(expiresIn ? { expiresIn } : {}),
      });
      const { token } = await this.invites.create(
        req.user!,
        { email: input.email ?? null, expiresInMs: input.expiresIn },
        req.ip,
      );
      // Shown once on the next page view; only its hash is stored.
      req.session.inviteLink = this.invites.linkFor(token, req);
      return 'Invite link created: copy it now, it is shown only once.';
    });
  }

  @Post('invites/:id/revoke')
  revokeInvite(@Req() req: Request, @Res() res: Response, @Param('id', uuidParam('invite')) id: string) {
    return this.act(req, res, '/admin/invites', async () => {
      if (!(await this.invites.revoke(req.user!, id, req.ip)))
        throw new HttpException('No such unused invite.', 404);
      return 'Invite revoked.';
    });
  }

  @Get('system')
  async system(@Req() req: Request, @Res() res: Response): Promise<void> {
    const system = await this.admin.system();
    const until = req.session.queueActionsUntil ?? 0;
    this.render(req, res, 'system', {
      title: 'Admin · System',
      storedBytes: formatBytes(system.storage.storedBytes),
      encryptedBytes: formatBytes(system.storage.encryptedBytes),
      statuses: Object.entries(system.filesByStatus).map(([status, files]) => ({ status, files })),
      queue: system.queue ? Object.entries(system.queue).map(([state, jobs]) => ({ state, jobs })) : null,
      failedJobs: system.failedJobs.map((j) => ({ ...j, finished: utcLabel(j.finishedAt) })),
      workers: system.workers,
      queueActionsOpen: until > Date.now(),
      queueActionsUntil: until > Date.now() ? utcLabel(new Date(until)) : null,
      queueActionsMinutes: QUEUE_ACTIONS_MS / 60_000,
    });
  }

  @Post('jobs/:id/retry')
  retry(@Req() req: Request, @Res() res: Response, @Param('id') id: string) {
    return this.act(req, res, '/admin/system', async () => {
      if (!JOB_ID.test(id)) throw new HttpException('No such job.', 404);
      await this.admin.retryJob(req.user!, id, req.ip);
      return `Job ${id} is back in the queue.`;
    });
  }

  @Post('jobs/:id/discard')
  discard(@Req() req: Request, @Res() res: Response, @Param('id') id: string) {
    return this.act(req, res, '/admin/system', async () => {
      if (!JOB_ID.test(id)) throw new HttpException('No such job.', 404);
      await this.admin.discardJob(req.user!, id, req.ip);
      return `Job ${id} discarded.`;
    });
  }

  /**
   * The confirmation that opens the queue dashboard's actions (retry, clean, remove, promote...) for a
   * while: a CSRF-checked POST from this session, audited. Until then /admin/queues is read-only.
   */
  @Post('system/queue-actions')
  async unlockQueueActions(@Req() req: Request, @Res() res: Response): Promise<void> {
    req.session.queueActionsUntil = Date.now() + QUEUE_ACTIONS_MS;
    await this.auditEvents.record({
      action: 'admin.queue_actions_unlocked',
      userId: req.user!.id,
      ip: req.ip,
      details: { minutes: QUEUE_ACTIONS_MS / 60_000 },
    });
    res.redirect(303, '/admin/queue-actions');
  }

  @Get('audit')
  async auditPage(@Req() req: Request, @Res() res: Response, @Query() query: unknown): Promise<void> {
    const q = parseOrThrow(adminAuditQuerySchema, query);
    const page = await this.audit.search(q);
    const params = (extra: Record<string, string>) =>
      new URLSearchParams(
        Object.fromEntries(
          Object.entries({ user: q.user, type: q.type, from: q.from, to: q.to, ...extra }).filter(
            (e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '',
          ),
        ),
      ).toString();
    this.render(req, res, 'audit', {
      title: 'Admin · Audit',
      q,
      types: Object.entries(TYPES).map(([value, t]) => ({
        value,
        label: t.label,
        selected: value === q.type,
      })),
      events: page.items.map((e) => ({ ...e, details: JSON.stringify(e.details) })),
      next: page.nextCursor ? `/admin/audit?${params({ cursor: page.nextCursor })}` : null,
      csv: `/admin/audit.csv?${params({})}`,
    });
  }

  @Get('audit.csv')
  async auditCsv(@Req() req: Request, @Res() res: Response, @Query() query: unknown): Promise<void> {
    const q = parseOrThrow(adminAuditQuerySchema, query);
    const rows = await this.audit.exportCsv(q, res);
    await this.auditEvents.record({
      action: 'admin.audit_exported',
      userId: req.user!.id,
      ip: req.ip,
      details: { rows, user: q.user ?? null, type: q.type ?? null, from: q.from ?? null, to: q.to ?? null },
    });
    res.end();
  }
}
