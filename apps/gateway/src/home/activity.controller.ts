import { BadRequestException, Controller, Get, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  AUDIT_ACTIONS,
  type AuditAction,
  type AuditEventEntity,
  AuditRepository,
  InvalidCursorError,
} from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { csrfToken } from '../http/csrf.js';
import { parseOrThrow } from '../http/validation.js';
import { utcLabel } from './home.controller.js';

/** Events per page of the Activity page. */
export const ACTIVITY_PAGE_SIZE = 50;

export const LABELS: Record<string, string> = {
  'user.registered': 'Account created',
  'login.succeeded': 'Signed in',
  'login.failed': 'Failed sign-in',
  'login.throttled': 'Sign-in throttled',
  logout: 'Signed out',
  'password.changed': 'Password changed',
  'password.change_failed': 'Wrong current password',
  'password.change_throttled': 'Password change throttled',
  'password.reset_requested': 'Password reset requested',
  'password.reset_throttled': 'Password reset throttled',
  'password.reset_completed': 'Password reset',
  'password.reset_failed': 'Password reset link refused',
  'mfa.totp_setup_started': 'Two-factor set-up started',
  'mfa.totp_enabled': 'Two-factor sign-in turned on',
  'mfa.totp_disabled': 'Two-factor sign-in turned off',
  'mfa.totp_disable_failed': 'Wrong password to turn off two-factor',
  'mfa.succeeded': 'Second factor accepted',
  'mfa.failed': 'Wrong second-factor code',
  'mfa.throttled': 'Second-factor codes throttled',
  'mfa.recovery_code_used': 'Recovery code used',
  'mfa.recovery_codes_regenerated': 'New recovery codes made',
  'mfa.reset': 'Two-factor sign-in reset by an operator',
  'mfa.passkey_added': 'Passkey added',
  'mfa.passkey_renamed': 'Passkey renamed',
  'mfa.passkey_removed': 'Passkey removed',
  'session.ended': 'Session signed out from the Security page',
  'token.created': 'API token created',
  'token.revoked': 'API token revoked',
  'upload.started': 'Resumable upload started',
  'upload.accepted': 'Upload accepted',
  'upload.cancelled': 'Upload cancelled',
  'upload.expired': 'Unfinished upload expired',
  'file.stored': 'File stored',
  'file.failed': 'Processing failed',
  'file.rejected': 'File refused',
  'file.infected': 'Malware found',
  'file.downloaded': 'File downloaded',
  'file.verified': 'File verified',
  'file.corrupt': 'Integrity check failed',
  'file.deleted': 'File deleted',
  'file.version_restored': 'Version restored',
  'file.version_deleted': 'Version deleted',
  'file.renamed': 'File renamed',
  'file.moved': 'File moved',
  'files.archive_downloaded': 'Files downloaded as a ZIP',
  'files.archive_aborted': 'ZIP download stopped by an integrity check',
  'folder.created': 'Folder created',
  'folder.renamed': 'Folder renamed',
  'folder.moved': 'Folder moved',
  'folder.deleted': 'Folder deleted',
  'share.created': 'Share link created',
  'share.revoked': 'Share link revoked',
  'share.viewed': 'Share link opened',
  'share.downloaded': 'Downloaded through a share link',
  'share.password_failed': 'Wrong share link password',
  'share.throttled': 'Share link attempts throttled',
  'admin.promoted': 'Made an administrator',
  'admin.user_disabled': 'Disabled an account (admin)',
  'admin.user_enabled': 'Enabled an account (admin)',
  'admin.quota_changed': 'Changed a quota (admin)',
  'admin.mfa_reset': 'Reset two-factor sign-in of an account (admin)',
  'admin.user_delete_requested': 'Asked to delete an account (admin)',
  'admin.user_deleted': 'Account deleted with its files (admin)',
  'admin.invite_created': 'Invite link created (admin)',
  'admin.invite_revoked': 'Invite link revoked (admin)',
  'admin.job_retried': 'Job retried (admin)',
  'admin.job_discarded': 'Job discarded (admin)',
  'admin.queue_actions_unlocked': 'Queue dashboard actions unlocked (admin)',
  'admin.audit_exported': 'Audit events exported (admin)',
};

/** Events shown as warnings. */
const ALERTS = new Set([
  'file.corrupt',
  'login.failed',
  'file.failed',
  'password.change_failed',
  'password.reset_failed',
  'share.password_failed',
  'share.throttled',
  'file.rejected',
  'file.infected',
  'mfa.failed',
  'mfa.totp_disable_failed',
  'mfa.recovery_code_used',
  'files.archive_aborted',
]);

/** The "Type" filter: groups of actions, in the order the select offers them. */
/** The "Type" filter's groups, in the order the select offers them. */
const TYPE_LABELS = {
  'sign-ins': 'Sign-ins and account',
  tokens: 'API tokens',
  uploads: 'Uploads',
  downloads: 'Downloads',
  folders: 'Names and folders',
  shares: 'Share links',
  integrity: 'Verifications and integrity',
  versions: 'Versions',
  deletions: 'Deletions',
  admin: 'Administration',
} as const;
type TypeKey = keyof typeof TYPE_LABELS;

/** File events that are not about the upload itself; every other action goes by its prefix. */
const FILE_GROUPS: Partial<Record<AuditAction, TypeKey>> = {
  'file.downloaded': 'downloads',
  'file.verified': 'integrity',
  'file.corrupt': 'integrity',
  'file.deleted': 'deletions',
  'file.version_restored': 'versions',
  'file.version_deleted': 'versions',
  'file.renamed': 'folders',
  'file.moved': 'folders',
  'files.archive_downloaded': 'downloads',
  'files.archive_aborted': 'downloads',
  'folder.deleted': 'deletions',
};
const PREFIX_GROUPS: Record<string, TypeKey> = {
  token: 'tokens',
  upload: 'uploads',
  file: 'uploads',
  folder: 'folders',
  share: 'shares',
  admin: 'admin',
};
const groupOf = (action: AuditAction): TypeKey =>
  FILE_GROUPS[action] ?? PREFIX_GROUPS[action.split('.')[0]!] ?? 'sign-ins';

/** Derived from AUDIT_ACTIONS, so a new action is always in exactly one group. */
export const TYPES: Record<string, { label: string; actions: AuditAction[] }> = Object.fromEntries(
  Object.entries(TYPE_LABELS).map(([key, label]) => [
    key,
    { label, actions: AUDIT_ACTIONS.filter((action) => groupOf(action) === key) },
  ]),
);

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A calendar date of the form's date inputs, as the UTC instant its midnight is in the user's zone. */
function localMidnight(date: string, offsetMinutes: number, addDays = 0): Date | null {
  const m = DATE.exec(date);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const utc = new Date(Date.UTC(year, month - 1, day));
  if (utc.getUTCFullYear() !== year || utc.getUTCMonth() !== month - 1 || utc.getUTCDate() !== day)
    return null;
  return new Date(utc.getTime() + addDays * 86_400_000 + offsetMinutes * 60_000);
}

const optionalDate = (name: string) =>
  z
    .string()
    .optional()
    .transform((v) => v || undefined)
    .refine((v) => v === undefined || localMidnight(v, 0) !== null, `${name} must be a date (YYYY-MM-DD)`);

const activityQuerySchema = z.object({
  type: z
    .string()
    .optional()
    .transform((v) => v || undefined)
    .refine((v) => v === undefined || Object.hasOwn(TYPES, v), {
      message: `type must be one of ${Object.keys(TYPES).join(', ')}`,
    }),
  from: optionalDate('from'),
  to: optionalDate('to'),
  // The browser's Date#getTimezoneOffset (minutes behind UTC), so dates are the user's own days.
  tz: z
    .string()
    .optional()
    .transform((v) => (v ? v : '0'))
    .refine((v) => /^-?\d{1,3}$/.test(v) && Math.abs(Number(v)) <= 840, 'tz must be minutes, -840 to 840')
    .transform(Number),
  cursor: z.string().max(200).optional(),
});

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) q.set(key, value);
  const text = q.toString();
  return text ? `?${text}` : '';
}

function row(e: AuditEventEntity) {
  const filename = typeof e.details.filename === 'string' ? e.details.filename : '';
  return {
    label: LABELS[e.action] ?? e.action,
    action: e.action,
    alert: ALERTS.has(e.action),
    when: utcLabel(e.createdAt),
    whenIso: e.createdAt.toISOString(),
    ip: e.ip ?? '',
    fileId: e.fileId ?? '',
    fileIdShort: e.fileId ? `${e.fileId.slice(0, 8)}…` : '',
    filename,
    detail: [
      e.details.error,
      e.details.reason,
      typeof e.details.bytes === 'number' ? `${e.details.bytes} bytes` : null,
      e.details.ok === false ? 'not ok' : e.details.ok === true ? 'ok' : null,
    ]
      .filter((v) => typeof v === 'string' && v)
      .join(' · '),
  };
}

/**
 * "Activity": the signed-in user's own audit events, newest first, a page at a time, filtered by type and
 * by the user's own calendar days. File events show the file's name as it was when the event was written
 * (kept in the event: the file may be gone), the id on hover and a copy button.
 */
@ApiExcludeController()
@Controller()
@UseGuards(PageAuthGuard)
export class ActivityController {
  constructor(private readonly audit: AuditRepository) {}

  @Get('activity')
  async activity(@Req() req: Request, @Res() res: Response): Promise<void> {
    const q = parseOrThrow(activityQuerySchema, req.query);
    const from = q.from ? localMidnight(q.from, q.tz)! : undefined;
    const before = q.to ? localMidnight(q.to, q.tz, 1)! : undefined;
    if (from && before && from >= before) throw new BadRequestException('from must not be after to.');
    let page: Awaited<ReturnType<AuditRepository['pageForUser']>>;
    try {
      page = await this.audit.pageForUser(req.user!.id, {
        actions: q.type ? TYPES[q.type]!.actions : undefined,
        from,
        before,
        cursor: q.cursor,
        limit: ACTIVITY_PAGE_SIZE,
      });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new BadRequestException(error.message);
      throw error;
    }
    const filters = { type: q.type, from: q.from, to: q.to, tz: q.tz ? String(q.tz) : undefined };
    // The user's own chain, re-verified on every view (docs/security.md item 33).
    const [chain] = (await this.audit.verify({ userId: req.user!.id })).chains;
    const trail = chain?.break
      ? { broken: true, text: `Audit trail broken: ${chain.break.message}` }
      : chain?.verifiedUpTo
        ? {
            broken: false,
            text: `Audit trail verified up to ${utcLabel(chain.verifiedUpTo)}`,
            iso: chain.verifiedUpTo.toISOString(),
          }
        : null;
    res.setHeader('Cache-Control', 'no-store');
    res.render('pages/activity', {
      title: 'Activity',
      user: req.user,
      csrfToken: csrfToken(req),
      modules: ['/static/js/activity.js'],
      hasEvents: page.items.length > 0,
      trail,
      events: page.items.map(row),
      filtered: Boolean(q.type || q.from || q.to),
      types: Object.entries(TYPES).map(([value, t]) => ({
        value,
        label: t.label,
        selected: value === q.type,
      })),
      from: q.from ?? '',
      to: q.to ?? '',
      tz: q.tz,
      olderHref: page.nextCursor ? `/activity${query({ ...filters, cursor: page.nextCursor })}` : '',
      newestHref: q.cursor ? `/activity${query(filters)}` : '',
    });
  }
}
