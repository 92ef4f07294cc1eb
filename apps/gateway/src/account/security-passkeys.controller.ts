import {
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Request, Response } from 'express';
import { passkeyNameSchema, passkeyRegistrationSchema } from '../auth/auth.schemas.js';
import { AuthService, WrongPasswordError } from '../auth/auth.service.js';
import { ThrottledException } from '../auth/login-protection.service.js';
import { InvalidSecondFactorError, MfaService } from '../auth/mfa.service.js';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { PasskeysService } from '../auth/passkeys.service.js';
import { fieldErrors, parseOrThrow } from '../http/validation.js';
import { field } from './security.controller.js';
import { SecurityPage } from './security-page.js';

/**
 * Passkeys on the security page (docs/security.md item 30a): add one (a WebAuthn registration driven by
 * /static/js/passkeys.js: options, then the browser's answer, as JSON), rename one, remove one (with the
 * password: a fresh check, whatever the session did before).
 */
@ApiExcludeController()
@Controller('account/security/passkeys')
@UseGuards(PageAuthGuard)
export class SecurityPasskeysController {
  constructor(
    private readonly passkeys: PasskeysService,
    private readonly mfa: MfaService,
    private readonly auth: AuthService,
    private readonly page: SecurityPage,
  ) {}

  @Post('options')
  @HttpCode(200)
  options(@Req() req: Request) {
    return this.passkeys.registrationOptions(req.user!, req.sessionID);
  }

  /** The browser's answer: stores the passkey; the first factor of an account brings recovery codes. */
  @Post()
  @HttpCode(201)
  async register(@Req() req: Request, @Body() body: unknown) {
    const input = parseOrThrow(passkeyRegistrationSchema, body);
    return this.passkeys.register(
      req.user!,
      req.sessionID,
      { name: input.name, response: input.response as unknown as RegistrationResponseJSON },
      req.ip ?? 'unknown',
    );
  }

  @Post(':id/rename')
  async rename(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', new ParseUUIDPipe({ version: '4' })) id: string,
    @Body() body: unknown,
  ): Promise<void> {
    const parsed = passkeyNameSchema.safeParse(body ?? {});
    if (!parsed.success)
      return this.page.render(req, res, HttpStatus.BAD_REQUEST, { errors: fieldErrors(parsed.error) });
    if (!(await this.passkeys.rename(req.user!, id, parsed.data.passkeyName, req.ip ?? 'unknown')))
      throw new NotFoundException('No such passkey.');
    req.session.flash = { kind: 'success', text: 'Passkey renamed.' };
    res.redirect(303, '/account/security');
  }

  @Post(':id/remove')
  async remove(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', new ParseUUIDPipe({ version: '4' })) id: string,
    @Body() body: unknown,
  ): Promise<void> {
    const user = req.user!;
    const password = field(body, 'passkeyPassword');
    const refuse = (status: number, message: string) =>
      this.page.render(req, res, status, { errors: { passkeyPassword: message } });
    if (!password) return refuse(HttpStatus.BAD_REQUEST, 'Enter your password to remove a passkey.');
    if (!(await this.passkeys.list(user.id)).some((p) => p.id === id))
      throw new NotFoundException('No such passkey.');
    try {
      await this.mfa.assertNotLastRequiredFactor(user.id, 'passkey');
      await this.auth.confirmPassword(user, password, req.ip ?? 'unknown', {
        throttled: 'mfa.throttled',
        failed: 'mfa.failed',
        details: { via: 'passkey-removal' },
      });
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return refuse(HttpStatus.TOO_MANY_REQUESTS, error.message);
      }
      if (error instanceof WrongPasswordError || error instanceof InvalidSecondFactorError)
        return refuse(HttpStatus.BAD_REQUEST, error.message);
      throw error;
    }
    if (!(await this.passkeys.remove(user, id, req.ip ?? 'unknown')))
      throw new NotFoundException('No such passkey.');
    req.session.flash = { kind: 'success', text: 'Passkey removed.' };
    res.redirect(303, '/account/security');
  }
}
