import { Body, Controller, Get, HttpStatus, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { WrongPasswordError } from '../auth/auth.service.js';
import { ThrottledException } from '../auth/login-protection.service.js';
import { InvalidSecondFactorError, MfaService } from '../auth/mfa.service.js';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import type { FieldErrors } from '../http/validation.js';
import { SecurityPage, type SecurityPageExtra } from './security-page.js';

/** A string field of a form body ('' when absent or not a string). */
export const field = (body: unknown, name: string): string => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
};

/**
 * "Security" (docs/security.md item 30): the TOTP second factor (set-up with a QR code rendered here,
 * activation by a first code, turning it off with the password and a code) and recovery codes. The
 * page's other parts have their own controllers (passkeys, API tokens, sessions); SecurityPage renders it.
 */
@ApiExcludeController()
@Controller('account/security')
@UseGuards(PageAuthGuard)
export class SecurityController {
  constructor(
    private readonly mfa: MfaService,
    private readonly securityPage: SecurityPage,
  ) {}

  private render(req: Request, res: Response, status: number, extra: SecurityPageExtra = {}): Promise<void> {
    return this.securityPage.render(req, res, status, extra);
  }

  @Get()
  page(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.render(req, res, HttpStatus.OK);
  }

  @Post('totp/setup')
  async setup(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!(await this.mfa.startEnrolment(req.user!, req.ip ?? 'unknown')))
      return this.render(req, res, HttpStatus.CONFLICT, {
        errors: { form: 'Two-factor sign-in is already on: turn it off first to set up another app.' },
      });
    res.redirect(303, '/account/security');
  }

  @Post('totp/activate')
  async activate(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const code = field(body, 'code').trim();
    if (!/^\d{6}$/.test(code))
      return this.render(req, res, HttpStatus.BAD_REQUEST, {
        errors: { code: 'Enter the 6-digit code your app shows.' },
      });
    try {
      const recoveryCodes = await this.mfa.activate(req.user!, code, req.ip ?? 'unknown');
      req.session.flash = { kind: 'success', text: 'Two-factor sign-in is on.' };
      // Rendered, not redirected: the recovery codes are shown this once and never stored in clear.
      return this.render(req, res, HttpStatus.OK, { recoveryCodes });
    } catch (error) {
      return this.refused(req, res, error, 'code');
    }
  }

  @Post('totp/disable')
  async disable(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const password = field(body, 'password');
    const code = field(body, 'disableCode');
    const errors: FieldErrors = {};
    if (!password) errors.password = 'Password is required.';
    if (!code.trim()) errors.disableCode = 'Enter a current code or a recovery code.';
    if (Object.keys(errors).length > 0) return this.render(req, res, HttpStatus.BAD_REQUEST, { errors });
    try {
      await this.mfa.disable(req.user!, password, code, req.ip ?? 'unknown');
      req.session.flash = { kind: 'success', text: 'Two-factor sign-in is off.' };
      res.redirect(303, '/account/security');
    } catch (error) {
      if (error instanceof WrongPasswordError)
        return this.render(req, res, HttpStatus.BAD_REQUEST, { errors: { password: error.message } });
      return this.refused(req, res, error, 'disableCode');
    }
  }

  @Post('recovery-codes')
  async regenerate(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    // With TOTP on, a current code; with passkeys only, the password (the page asks for the one that fits).
    const code = field(body, 'regenerateCode');
    const password = field(body, 'regeneratePassword');
    if (!code.trim() && !password)
      return this.render(req, res, HttpStatus.BAD_REQUEST, {
        errors: { regenerateCode: 'Enter a current code.', regeneratePassword: 'Enter your password.' },
      });
    try {
      const recoveryCodes = await this.mfa.regenerateRecoveryCodes(
        req.user!,
        { code, password },
        req.ip ?? 'unknown',
      );
      req.session.flash = { kind: 'success', text: 'New recovery codes made: the old ones no longer work.' };
      return this.render(req, res, HttpStatus.OK, { recoveryCodes });
    } catch (error) {
      if (error instanceof WrongPasswordError)
        return this.render(req, res, HttpStatus.BAD_REQUEST, {
          errors: { regeneratePassword: error.message },
        });
      return this.refused(req, res, error, 'regenerateCode');
    }
  }

  private refused(req: Request, res: Response, error: unknown, name: string): Promise<void> {
    if (error instanceof ThrottledException) {
      res.setHeader('Retry-After', String(error.retryAfterSeconds));
      return this.render(req, res, HttpStatus.TOO_MANY_REQUESTS, { errors: { form: error.message } });
    }
    if (error instanceof InvalidSecondFactorError)
      return this.render(req, res, HttpStatus.BAD_REQUEST, { errors: { [name]: error.message } });
    throw error;
  }
}
