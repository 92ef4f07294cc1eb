import { Body, Controller, Get, HttpStatus, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { UserRepository } from '#common';
import { changePasswordFormSchema } from '../auth/auth.schemas.js';
import { AuthService, WeakPasswordError, WrongPasswordError } from '../auth/auth.service.js';
import { ThrottledException } from '../auth/login-protection.service.js';
import { MfaService } from '../auth/mfa.service.js';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { UserSessionsService } from '../auth/user-sessions.service.js';
import { csrfToken } from '../http/csrf.js';
import { type FieldErrors, fieldErrors } from '../http/validation.js';
import { TokensService } from '../tokens/tokens.service.js';

function sessionsEnded(count: number): string {
  if (count === 0) return 'No other session was signed in';
  return count === 1 ? 'Your other session was signed out' : `Your ${count} other sessions were signed out`;
}

/** "Account": who you are, and the password change form (docs/security.md item 11a). */
@ApiExcludeController()
@Controller('account')
@UseGuards(PageAuthGuard)
export class AccountController {
  constructor(
    private readonly auth: AuthService,
    private readonly sessions: UserSessionsService,
    private readonly users: UserRepository,
    private readonly tokens: TokensService,
    private readonly mfa: MfaService,
  ) {}

  private async render(req: Request, res: Response, status: number, errors: FieldErrors = {}): Promise<void> {
    const user = req.user!;
    const [account, tokens, mfa] = await Promise.all([
      this.users.findById(user.id),
      this.tokens.list(user.id),
      this.mfa.status(user.id),
    ]);
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    res.setHeader('Cache-Control', 'private, no-store');
    res.status(status).render('pages/account', {
      title: 'Account',
      user,
      email: account?.email ?? '',
      tokenCount: tokens.length,
      totpOn: mfa.totp === 'on',
      flash,
      errors,
      csrfToken: csrfToken(req),
    });
  }

  @Get()
  page(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.render(req, res, HttpStatus.OK);
  }

  @Post('password')
  async changePassword(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const parsed = changePasswordFormSchema.safeParse(body ?? {});
    if (!parsed.success) return this.render(req, res, HttpStatus.BAD_REQUEST, fieldErrors(parsed.error));
    const user = req.user!;
    try {
      const ended = await this.auth.changePassword(
        user,
        parsed.data,
        req.ip ?? 'unknown',
        'page',
        req.sessionID,
      );
      await this.sessions.renew(req, user);
      req.session.flash = {
        kind: 'success',
        text: `Your password was changed. ${sessionsEnded(ended)}; your API tokens keep working.`,
      };
      res.redirect(303, '/account');
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return this.render(req, res, HttpStatus.TOO_MANY_REQUESTS, { form: error.message });
      }
      if (error instanceof WrongPasswordError)
        return this.render(req, res, HttpStatus.BAD_REQUEST, { currentPassword: error.message });
      if (error instanceof WeakPasswordError)
        return this.render(req, res, HttpStatus.BAD_REQUEST, { newPassword: error.message });
      throw error;
    }
  }
}
