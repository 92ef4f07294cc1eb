import {
  Body,
  Controller,
  Get,
  HttpStatus,
  Inject,
  Post,
  Req,
  Res,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AuditRepository, DuplicateUsernameError, TESS_CONFIG, type TessConfig } from '#common';
import { EventsGateway } from '../events/events.gateway.js';
import { csrfToken } from '../http/csrf.js';
import { SESSION_COOKIE } from '../http/session.js';
import { isFullySignedIn } from '../http/session-state.js';
import { fieldErrors } from '../http/validation.js';
import { loginSchema, registerSchema } from './auth.schemas.js';
import { AuthService, WeakPasswordError } from './auth.service.js';
import { ThrottledException } from './login-protection.service.js';
import { MfaService } from './mfa.service.js';
import { UserSessionsService } from './user-sessions.service.js';

function render(req: Request, res: Response, view: string, status: number, locals: Record<string, unknown>) {
  res.status(status).render(view, { csrfToken: csrfToken(req), ...locals });
}

@ApiExcludeController()
@Controller()
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly audit: AuditRepository,
    private readonly events: EventsGateway,
    private readonly sessions: UserSessionsService,
    private readonly mfa: MfaService,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** "Forgot password?" is offered only when TESS can send mail. */
  private loginLinks(): { canResetPassword: boolean } {
    return { canResetPassword: this.config.mail.smtpUrl !== null };
  }

  @Get('/')
  root(@Req() req: Request, @Res() res: Response): void {
    res.redirect(303, isFullySignedIn(req) ? '/home' : '/login');
  }

  @Get('/register')
  registerPage(@Req() req: Request, @Res() res: Response): void {
    if (isFullySignedIn(req)) {
      res.redirect(303, '/home');
      return;
    }
    render(req, res, 'pages/register', HttpStatus.OK, { title: 'Create account', values: {} });
  }

  @Post('/register')
  async register(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const parsed = registerSchema.safeParse(body ?? {});
    const raw = (body ?? {}) as Record<string, unknown>;
    const values = { username: raw.username, email: raw.email };
    const show = (status: number, errors: Record<string, string>) =>
      render(req, res, 'pages/register', status, { title: 'Create account', values, errors });
    if (!parsed.success) return show(HttpStatus.BAD_REQUEST, fieldErrors(parsed.error));
    try {
      const user = await this.auth.register(parsed.data, req.ip ?? 'unknown');
      if (this.config.mfa.required) {
        // MFA_REQUIRED: a new account sets up its second factor before anything else.
        await this.sessions.startPending(req, { id: user.id, username: user.username }, true);
        res.redirect(303, '/login/enrol');
        return;
      }
      await this.sessions.start(req, { id: user.id, username: user.username });
      req.session.flash = { kind: 'success', text: `Welcome to TESS, ${user.username}.` };
      res.redirect(303, '/home');
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return show(HttpStatus.TOO_MANY_REQUESTS, { form: error.message });
      }
      if (error instanceof DuplicateUsernameError)
        return show(HttpStatus.CONFLICT, { username: error.message });
      if (error instanceof WeakPasswordError)
        return show(HttpStatus.BAD_REQUEST, { password: error.message });
      throw error;
    }
  }

  @Get('/login')
  loginPage(@Req() req: Request, @Res() res: Response): void {
    if (isFullySignedIn(req)) {
      res.redirect(303, '/home');
      return;
    }
    const flash = req.session?.flash;
    if (flash) delete req.session.flash;
    // After a password reset (anonymous, so no session to carry a flash message).
    const notice =
      req.query.reset === 'done' ? 'Your password was changed. Sign in with the new one.' : undefined;
    render(req, res, 'pages/login', HttpStatus.OK, {
      title: 'Sign in',
      values: {},
      flash: flash ?? (notice ? { kind: 'success', text: notice } : undefined),
      ...this.loginLinks(),
    });
  }

  @Post('/login')
  async login(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const parsed = loginSchema.safeParse(body ?? {});
    const username =
      typeof (body as { username?: unknown })?.username === 'string'
        ? (body as { username: string }).username
        : '';
    // A form-wide message (errors.form), like the register page: a top-level `error` would also reach
    // each field partial, which inherits this context, and be shown under every field.
    const show = (status: number, error: string) =>
      render(req, res, 'pages/login', status, {
        ...this.loginLinks(),
        title: 'Sign in',
        values: { username },
        errors: { form: error },
      });
    if (!parsed.success) return show(HttpStatus.BAD_REQUEST, 'Enter your username and password.');
    try {
      const user = await this.auth.authenticate(
        parsed.data.username,
        parsed.data.password,
        req.ip ?? 'unknown',
      );
      if (await this.mfa.hasSecondFactor(user.id)) {
        await this.sessions.startPending(req, { id: user.id, username: user.username });
        res.redirect(303, '/login/second-factor');
        return;
      }
      if (this.config.mfa.required) {
        await this.sessions.startPending(req, { id: user.id, username: user.username }, true);
        res.redirect(303, '/login/enrol');
        return;
      }
      await this.sessions.start(req, { id: user.id, username: user.username });
      await this.audit.record({ action: 'login.succeeded', userId: user.id, ip: req.ip });
      res.redirect(303, '/home');
    } catch (error) {
      if (error instanceof ThrottledException) {
        res.setHeader('Retry-After', String(error.retryAfterSeconds));
        return show(HttpStatus.TOO_MANY_REQUESTS, error.message);
      }
      if (error instanceof UnauthorizedException) return show(HttpStatus.UNAUTHORIZED, error.message);
      throw error;
    }
  }

  @Post('/logout')
  async logout(@Req() req: Request, @Res() res: Response): Promise<void> {
    const userId = req.user?.id;
    // Read before logout: passport regenerates the session on the way out.
    const sessionId = req.sessionID;
    this.events.disconnectSession(sessionId);
    await new Promise<void>((resolve, reject) => req.logout((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) =>
      req.session.destroy((err) => (err ? reject(err) : resolve())),
    );
    if (userId) {
      await this.sessions.remove(userId, sessionId);
      await this.audit.record({ action: 'logout', userId, ip: req.ip });
    }
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.redirect(303, '/login');
  }
}
