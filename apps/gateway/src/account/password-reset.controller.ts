import {
  Body,
  type CanActivate,
  Controller,
  Get,
  HttpStatus,
  Injectable,
  NotFoundException,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { forgotPasswordSchema, resetPasswordSchema } from '../auth/auth.schemas.js';
import { WeakPasswordError } from '../auth/auth.service.js';
import { ThrottledException } from '../auth/login-protection.service.js';
import { csrfToken } from '../http/csrf.js';
import { type FieldErrors, fieldErrors } from '../http/validation.js';
import { MailerService } from '../mail/mailer.service.js';
import {
  InvalidResetLinkError,
  PasswordResetService,
  RESET_TOKEN_LIFETIME_MS,
} from './password-reset.service.js';

/** Without SMTP_URL there is no password reset: its pages answer 404. */
@Injectable()
export class MailEnabledGuard implements CanActivate {
  constructor(private readonly mailer: MailerService) {}

  canActivate(): boolean {
    if (!this.mailer.enabled) throw new NotFoundException('No such page.');
    return true;
  }
}

const MINUTES = RESET_TOKEN_LIFETIME_MS / 60_000;

/** The answer to every well-formed request, whether or not the address belongs to an account. */
export const RESET_REQUESTED =
  'If an account uses that address, we have sent it a link to choose a new password. ' +
  `The link works once, for ${MINUTES} minutes.`;

/**
 * "Forgot password?": the request form and the page a mailed link opens (docs/security.md item 11b).
 * Both are anonymous forms (CSRF token in the form cookie, nothing stored in Redis). Reset pages are
 * never cached and never send a Referer, since their URL holds the token.
 */
@ApiExcludeController()
@Controller()
@UseGuards(MailEnabledGuard)
export class PasswordResetController {
  constructor(private readonly resets: PasswordResetService) {}

  private show(req: Request, res: Response, view: string, status: number, locals: Record<string, unknown>) {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.status(status).render(view, { csrfToken: csrfToken(req), ...locals });
  }

  private forgotPage(req: Request, res: Response, status: number, locals: Record<string, unknown> = {}) {
    this.show(req, res, 'pages/forgot-password', status, { title: 'Forgot password', values: {}, ...locals });
  }

  private resetPage(req: Request, res: Response, status: number, token: string, errors: FieldErrors = {}) {
    this.show(req, res, 'pages/reset-password', status, { title: 'Choose a new password', token, errors });
  }

  /** A link that cannot be used: the page says so and offers a new one. */
  private deadLink(req: Request, res: Response, error: InvalidResetLinkError) {
    this.forgotPage(req, res, HttpStatus.BAD_REQUEST, { errors: { form: error.message } });
  }

  @Get('forgot-password')
  forgot(@Req() req: Request, @Res() res: Response): void {
    this.forgotPage(req, res, HttpStatus.OK);
  }

  @Post('forgot-password')
  async request(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const parsed = forgotPasswordSchema.safeParse(body ?? {});
    const raw = (body ?? {}) as Record<string, unknown>;
    const values = { email: typeof raw.email === 'string' ? raw.email : '' };
    if (!parsed.success)
      return this.forgotPage(req, res, HttpStatus.BAD_REQUEST, { values, errors: fieldErrors(parsed.error) });
    try {
      await this.resets.request(parsed.data.email, req.ip ?? 'unknown');
    } catch (error) {
      if (!(error instanceof ThrottledException)) throw error;
      res.setHeader('Retry-After', String(error.retryAfterSeconds));
      return this.forgotPage(req, res, HttpStatus.TOO_MANY_REQUESTS, {
        values,
        errors: { form: error.message },
      });
    }
    this.forgotPage(req, res, HttpStatus.OK, { sent: RESET_REQUESTED });
  }

  @Get('reset-password')
  async resetForm(@Req() req: Request, @Res() res: Response, @Query('token') token: unknown): Promise<void> {
    const value = typeof token === 'string' ? token : '';
    try {
      await this.resets.check(value, req.ip ?? 'unknown');
    } catch (error) {
      if (error instanceof InvalidResetLinkError) return this.deadLink(req, res, error);
      throw error;
    }
    this.resetPage(req, res, HttpStatus.OK, value);
  }

  @Post('reset-password')
  async reset(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const parsed = resetPasswordSchema.safeParse(body ?? {});
    const raw = (body ?? {}) as Record<string, unknown>;
    const token = typeof raw.token === 'string' ? raw.token : '';
    if (!parsed.success)
      return this.resetPage(req, res, HttpStatus.BAD_REQUEST, token, fieldErrors(parsed.error));
    try {
      await this.resets.complete(parsed.data.token, parsed.data.newPassword, req.ip ?? 'unknown');
    } catch (error) {
      if (error instanceof InvalidResetLinkError) return this.deadLink(req, res, error);
      if (error instanceof WeakPasswordError)
        return this.resetPage(req, res, HttpStatus.BAD_REQUEST, token, { newPassword: error.message });
      throw error;
    }
    // Anonymous: no session to carry a flash message, so the login page reads the notice from the URL.
    res.redirect(303, '/login?reset=done');
  }
}
