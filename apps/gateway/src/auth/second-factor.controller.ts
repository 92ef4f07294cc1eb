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
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Request, Response } from 'express';
import { csrfToken } from '../http/csrf.js';
import { isFullySignedIn, pendingSecondFactor } from '../http/session-state.js';
import { parseOrThrow } from '../http/validation.js';
import { passkeyAssertionSchema } from './auth.schemas.js';
import { ThrottledException } from './login-protection.service.js';
import { InvalidSecondFactorError, MfaService } from './mfa.service.js';
import { PasskeysService } from './passkeys.service.js';
import { PENDING_EXPIRED, pendingExpired, SignInCompletion } from './sign-in-completion.js';

/**
 * The second sign-in step (docs/security.md items 30, 30a): the only page a session waiting for its
 * second factor can use. A code (TOTP or recovery) is a form post; a passkey is a WebAuthn assertion
 * driven by /static/js/passkeys.js (options, then the browser's answer, as JSON).
 */
@ApiExcludeController()
@Controller('login/second-factor')
export class SecondFactorController {
  constructor(
    private readonly mfa: MfaService,
    private readonly passkeys: PasskeysService,
    private readonly completion: SignInCompletion,
  ) {}

  private async show(req: Request, res: Response, status: number, error?: string): Promise<void> {
    const pending = pendingSecondFactor(req)!;
    const factors = await this.mfa.factors(pending.userId);
    res.setHeader('Cache-Control', 'private, no-store');
    res.status(status).render('pages/second-factor', {
      title: 'Two-factor sign-in',
      csrfToken: csrfToken(req),
      totp: factors.totp,
      passkeys: factors.passkeys > 0,
      scripts:
        factors.passkeys > 0 ? ['/assets/simplewebauthn/index.umd.min.js', '/static/js/passkeys.js'] : [],
      errors: error ? { code: error } : {},
    });
  }

  @Get()
  async page(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (isFullySignedIn(req)) return res.redirect(303, '/home');
    const pending = pendingSecondFactor(req);
    if (!pending) return pendingExpired(req, res);
    if (pending.enrol) return res.redirect(303, '/login/enrol');
    return this.show(req, res, HttpStatus.OK);
  }

  @Post()
  async code(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const pending = pendingSecondFactor(req);
    if (!pending) return pendingExpired(req, res);
    if (pending.enrol) return res.redirect(303, '/login/enrol');
    const code =
      typeof (body as { code?: unknown })?.code === 'string' ? (body as { code: string }).code : '';
    if (code.trim() === '' || code.length > 64)
      return this.show(req, res, HttpStatus.BAD_REQUEST, 'Enter the code.');
    const user = { id: pending.userId, username: pending.username };
    try {
      const kind = await this.mfa.verify(user, code, req.ip ?? 'unknown', 'sign-in');
      await this.completion.complete(req, user, kind);
      res.redirect(303, '/home');
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return this.show(req, res, HttpStatus.TOO_MANY_REQUESTS, error.message);
      }
      if (error instanceof InvalidSecondFactorError)
        return this.show(req, res, HttpStatus.UNAUTHORIZED, error.message);
      throw error;
    }
  }

  /** WebAuthn options for the pending user's passkeys (a fresh challenge bound to this session). */
  @Post('passkey/options')
  @HttpCode(200)
  async passkeyOptions(@Req() req: Request) {
    const pending = this.pendingOrThrow(req);
    const options = await this.passkeys.authenticationOptions(
      { id: pending.userId, username: pending.username },
      req.sessionID,
    );
    if (!options) throw new UnauthorizedException('This account has no passkey: enter a code instead.');
    return options;
  }

  /** The browser's assertion: on success the session is signed in and the client goes to `redirect`. */
  @Post('passkey')
  @HttpCode(200)
  async passkey(@Req() req: Request, @Body() body: unknown) {
    const pending = this.pendingOrThrow(req);
    const input = parseOrThrow(passkeyAssertionSchema, body);
    const user = { id: pending.userId, username: pending.username };
    try {
      await this.passkeys.authenticate(
        user,
        req.sessionID,
        input.response as unknown as AuthenticationResponseJSON,
        req.ip ?? 'unknown',
        'sign-in',
      );
    } catch (error) {
      if (error instanceof InvalidSecondFactorError) throw new UnauthorizedException(error.message);
      throw error;
    }
    await this.completion.complete(req, user, 'passkey');
    return { redirect: '/home' };
  }

  private pendingOrThrow(req: Request) {
    const pending = pendingSecondFactor(req);
    if (!pending || pending.enrol) throw new UnauthorizedException(PENDING_EXPIRED);
    return pending;
  }
}
