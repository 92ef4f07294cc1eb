import {
  Body,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Post,
  Req,
  Res,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Request, Response } from 'express';
import { csrfToken } from '../http/csrf.js';
import { isFullySignedIn, pendingSecondFactor } from '../http/session-state.js';
import { parseOrThrow } from '../http/validation.js';
import { passkeyRegistrationSchema } from './auth.schemas.js';
import { ThrottledException } from './login-protection.service.js';
import { InvalidSecondFactorError, MfaService } from './mfa.service.js';
import { PasskeysService } from './passkeys.service.js';
import { PENDING_EXPIRED, pendingExpired, SignInCompletion } from './sign-in-completion.js';

/**
 * MFA_REQUIRED (docs/security.md item 30b): an account without a second factor signs in to this page
 * and nothing else (its session is pending, see isFullySignedIn) until it has set one up, an
 * authenticator app or a passkey; then the session is signed in and the recovery codes are shown once.
 */
@ApiExcludeController()
@Controller('login/enrol')
export class EnrolmentController {
  constructor(
    private readonly mfa: MfaService,
    private readonly passkeys: PasskeysService,
    private readonly completion: SignInCompletion,
  ) {}

  private pending(req: Request) {
    const pending = pendingSecondFactor(req);
    return pending?.enrol ? { id: pending.userId, username: pending.username } : undefined;
  }

  private async show(
    req: Request,
    res: Response,
    status: number,
    locals: { errors?: Record<string, string>; recoveryCodes?: string[] } = {},
  ): Promise<void> {
    const user = req.user ?? this.pending(req)!;
    const codes = locals.recoveryCodes;
    res.setHeader('Cache-Control', 'private, no-store');
    res.status(status).render('pages/enrol', {
      title: 'Set up two-factor sign-in',
      csrfToken: csrfToken(req),
      enrolment: codes ? null : await this.mfa.pendingEnrolment(user),
      recoveryCodes: codes,
      recoveryCodesFile: codes
        ? `data:text/plain;charset=utf-8,${encodeURIComponent(`TESS recovery codes for ${user.username}\n\n${codes.join('\n')}\n`)}`
        : undefined,
      scripts: codes ? [] : ['/assets/simplewebauthn/index.umd.min.js', '/static/js/passkeys.js'],
      errors: locals.errors ?? {},
    });
  }

  @Get()
  async page(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (isFullySignedIn(req)) return res.redirect(303, '/home');
    const user = this.pending(req);
    if (!user) return pendingExpired(req, res);
    // A fresh authenticator secret unless one is waiting for its first code already.
    if ((await this.mfa.status(user.id)).totp === 'off')
      await this.mfa.startEnrolment(user, req.ip ?? 'unknown');
    return this.show(req, res, HttpStatus.OK);
  }

  /** The authenticator app's first code: TOTP on, the session signed in, the recovery codes shown. */
  @Post()
  async activate(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const user = this.pending(req);
    if (!user) return pendingExpired(req, res);
    const code =
      typeof (body as { code?: unknown })?.code === 'string' ? (body as { code: string }).code.trim() : '';
    if (!/^\d{6}$/.test(code))
      return this.show(req, res, HttpStatus.BAD_REQUEST, {
        errors: { code: 'Enter the 6-digit code your app shows.' },
      });
    try {
      const recoveryCodes = await this.mfa.activate(user, code, req.ip ?? 'unknown');
      await this.completion.complete(req, user, 'enrolled-totp');
      return this.show(req, res, HttpStatus.OK, { recoveryCodes });
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return this.show(req, res, HttpStatus.TOO_MANY_REQUESTS, { errors: { code: error.message } });
      }
      if (error instanceof InvalidSecondFactorError)
        return this.show(req, res, HttpStatus.BAD_REQUEST, { errors: { code: error.message } });
      throw error;
    }
  }

  @Post('passkey/options')
  @HttpCode(200)
  async passkeyOptions(@Req() req: Request) {
    const user = this.pending(req);
    if (!user) throw new UnauthorizedException(PENDING_EXPIRED);
    return this.passkeys.registrationOptions(user, req.sessionID);
  }

  /** A passkey as the first factor: the session is signed in; the client shows the recovery codes. */
  @Post('passkey')
  @HttpCode(201)
  async passkey(@Req() req: Request, @Body() body: unknown) {
    const user = this.pending(req);
    if (!user) throw new UnauthorizedException(PENDING_EXPIRED);
    const input = parseOrThrow(passkeyRegistrationSchema, body);
    const passkey = await this.passkeys.register(
      user,
      req.sessionID,
      { name: input.name, response: input.response as unknown as RegistrationResponseJSON },
      req.ip ?? 'unknown',
    );
    await this.completion.complete(req, user, 'enrolled-passkey');
    return { ...passkey, redirect: '/home' };
  }
}
