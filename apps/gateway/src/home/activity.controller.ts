import { Controller, Get, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AuditRepository } from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { csrfToken } from '../http/csrf.js';
import { utcLabel } from './home.controller.js';

const LABELS: Record<string, string> = {
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
  'token.created': 'API token created',
  'token.revoked': 'API token revoked',
  'upload.started': 'Resumable upload started',
  'upload.accepted': 'Upload accepted',
  'upload.cancelled': 'Upload cancelled',
  'upload.expired': 'Unfinished upload expired',
  'file.stored': 'File stored',
  'file.failed': 'Processing failed',
  'file.downloaded': 'File downloaded',
  'file.verified': 'File verified',
  'file.corrupt': 'Integrity check failed',
  'file.deleted': 'File deleted',
};

/** Events shown as warnings. */
const ALERTS = new Set([
  'file.corrupt',
  'login.failed',
  'file.failed',
  'password.change_failed',
  'password.reset_failed',
  'mfa.failed',
  'mfa.totp_disable_failed',
  'mfa.recovery_code_used',
]);

/** "Activity": the signed-in user's own audit events, newest first. */
@ApiExcludeController()
@Controller()
@UseGuards(PageAuthGuard)
export class ActivityController {
  constructor(private readonly audit: AuditRepository) {}

  @Get('activity')
  async activity(@Req() req: Request, @Res() res: Response): Promise<void> {
    const events = await this.audit.listForUser(req.user!.id, 200);
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
      hasEvents: events.length > 0,
      trail,
      events: events.map((e) => ({
        label: LABELS[e.action] ?? e.action,
        action: e.action,
        alert: ALERTS.has(e.action),
        when: utcLabel(e.createdAt),
        whenIso: e.createdAt.toISOString(),
        ip: e.ip ?? '',
        fileId: e.fileId ?? '',
        detail: [
          e.details.filename,
          e.details.error,
          e.details.ok === false ? 'not ok' : e.details.ok === true ? 'ok' : null,
        ]
          .filter((v) => typeof v === 'string' && v)
          .join(' · '),
      })),
    });
  }
}
