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
  'token.created': 'API token created',
  'token.revoked': 'API token revoked',
  'upload.accepted': 'Upload accepted',
  'file.stored': 'File stored',
  'file.failed': 'Processing failed',
  'file.rejected': 'File refused',
  'file.infected': 'Malware found',
  'file.downloaded': 'File downloaded',
  'file.verified': 'File verified',
  'file.corrupt': 'Integrity check failed',
  'file.deleted': 'File deleted',
};

/** "Activity": the signed-in user's own audit events, newest first. */
@ApiExcludeController()
@Controller()
@UseGuards(PageAuthGuard)
export class ActivityController {
  constructor(private readonly audit: AuditRepository) {}

  @Get('activity')
  async activity(@Req() req: Request, @Res() res: Response): Promise<void> {
    const events = await this.audit.listForUser(req.user!.id, 200);
    res.setHeader('Cache-Control', 'no-store');
    res.render('pages/activity', {
      title: 'Activity',
      user: req.user,
      csrfToken: csrfToken(req),
      hasEvents: events.length > 0,
      events: events.map((e) => ({
        label: LABELS[e.action] ?? e.action,
        action: e.action,
        alert:
          e.action === 'file.corrupt' ||
          e.action === 'login.failed' ||
          e.action === 'file.failed' ||
          e.action === 'file.rejected' ||
          e.action === 'file.infected',
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
