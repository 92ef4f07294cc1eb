import { Controller, HttpStatus, NotFoundException, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AuditRepository } from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { sessionHandle, UserSessionsService } from '../auth/user-sessions.service.js';
import { SESSION_COOKIE } from '../http/session.js';
import { SecurityPage } from './security-page.js';

const HANDLE = /^[A-Za-z0-9_-]{22}$/;

/**
 * The user's sessions on the security page (docs/security.md item 30d): end one of them, or all but
 * this one. An ended session is deleted from Redis (its next request is anonymous: 401 on the API, the
 * sign-in page otherwise) and its sockets are disconnected at once, on every replica.
 */
@ApiExcludeController()
@Controller('account/security/sessions')
@UseGuards(PageAuthGuard)
export class SecuritySessionsController {
  constructor(
    private readonly sessions: UserSessionsService,
    private readonly audit: AuditRepository,
    private readonly page: SecurityPage,
  ) {}

  @Post('others/end')
  async endOthers(@Req() req: Request, @Res() res: Response): Promise<void> {
    const user = req.user!;
    const ended = await this.sessions.endAll(user.id, req.sessionID);
    await this.audit.record({
      action: 'session.ended',
      userId: user.id,
      ip: req.ip,
      details: { via: 'security-page', scope: 'others', ended },
    });
    req.session.flash = {
      kind: 'success',
      text: ended === 1 ? 'Signed out 1 other session.' : `Signed out ${ended} other sessions.`,
    };
    res.redirect(303, '/account/security');
  }

  @Post(':handle/end')
  async end(@Req() req: Request, @Res() res: Response, @Param('handle') handle: string): Promise<void> {
    const user = req.user!;
    if (!HANDLE.test(handle))
      return this.page.render(req, res, HttpStatus.BAD_REQUEST, {
        errors: { form: 'That is not a session of this list.' },
      });
    const current = handle === sessionHandle(req.sessionID);
    if (!(await this.sessions.end(user.id, handle))) throw new NotFoundException('No such session.');
    await this.audit.record({
      action: 'session.ended',
      userId: user.id,
      ip: req.ip,
      details: { via: 'security-page', scope: current ? 'this' : 'one', ended: 1 },
    });
    if (current) {
      // This very session: a sign-out. Destroyed here too, so the end of this response cannot save it back.
      await new Promise<void>((resolve, reject) =>
        req.session.destroy((err) => (err ? reject(err) : resolve())),
      );
      res.clearCookie(SESSION_COOKIE, { path: '/' });
      res.redirect(303, '/login');
      return;
    }
    req.session.flash = { kind: 'success', text: 'That session is signed out.' };
    res.redirect(303, '/account/security');
  }
}
