import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  AuditRepository,
  PasswordResetTokenRepository,
  type ResetTokenState,
  TESS_CONFIG,
  type TessConfig,
  type UserEntity,
  UserRepository,
} from '#common';
import { WeakPasswordError } from '../auth/auth.service.js';
import { LoginProtectionService, ThrottledException } from '../auth/login-protection.service.js';
import { PasswordService, passwordProblem } from '../auth/password.service.js';
import { UserSessionsService } from '../auth/user-sessions.service.js';
import { MailerService } from '../mail/mailer.service.js';

/** How long a reset link works. */
export const RESET_TOKEN_LIFETIME_MS = 30 * 60_000;
/** 256 random bits, base64url: 43 characters. */
const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Accounts one address may hold that get a link each (addresses are not unique). */
const MAX_ACCOUNTS_PER_ADDRESS = 5;

/** A link that cannot be used: unknown, already used (or invalidated by a password change), expired. */
export class InvalidResetLinkError extends Error {
  constructor(readonly state: Exclude<ResetTokenState, 'valid'>) {
    super(
      state === 'expired'
        ? 'This password reset link has expired. Ask for a new one.'
        : 'This password reset link is not valid (it may have been used already). Ask for a new one.',
    );
    this.name = 'InvalidResetLinkError';
  }
}

/** SHA-256 hex of a reset token: the token carries 256 random bits, so a fast hash is enough. */
export function hashResetToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The message with the reset link: plain text, the link built from PUBLIC_URL (never the Host header). */
export function resetMail(publicUrl: string, username: string, token: string) {
  const link = `${publicUrl.replace(/\/+$/, '')}/reset-password?token=${token}`;
  const minutes = RESET_TOKEN_LIFETIME_MS / 60_000;
  return {
    subject: 'Reset your TESS password',
    text: [
      `Hello ${username},`,
      '',
      `Someone (hopefully you) asked to reset the password of the TESS account "${username}".`,
      `To choose a new password, open this link within ${minutes} minutes:`,
      '',
      link,
      '',
      'The link works once. If you did not ask for this, ignore this message: your password stays as it is.',
      '',
      '-- TESS',
      '',
    ].join('\n'),
  };
}

/**
 * Password reset by e-mail (docs/security.md item 11b). A request answers the same whether or not the
 * address belongs to an account, and in comparable time: the lookup and the token row are the only
 * work on the request path, the SMTP conversation runs after the answer (in this process, since a job
 * payload must never hold a credential; a gateway that dies first loses the message, and the user asks
 * again). Requests are throttled per e-mail address and per client address, and audited.
 */
@Injectable()
export class PasswordResetService implements OnApplicationShutdown {
  private readonly logger = new Logger(PasswordResetService.name);
  /** Messages still being sent; shutdown waits for them. */
  private readonly deliveries = new Set<Promise<void>>();

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly users: UserRepository,
    private readonly tokens: PasswordResetTokenRepository,
    private readonly passwords: PasswordService,
    private readonly protection: LoginProtectionService,
    private readonly sessions: UserSessionsService,
    private readonly mailer: MailerService,
    private readonly audit: AuditRepository,
  ) {}

  get enabled(): boolean {
    return this.mailer.enabled;
  }

  /** Sends a link to every account registered with `email` (none: nothing is sent, the same answer). */
  async request(email: string, ip: string): Promise<void> {
    try {
      await this.protection.beginPasswordReset(email, ip);
    } catch (error) {
      if (error instanceof ThrottledException) {
        await this.audit.record({ action: 'password.reset_throttled', ip, details: { limit: error.limit } });
      }
      throw error;
    }
    const accounts = await this.users.findByEmail(email, MAX_ACCOUNTS_PER_ADDRESS);
    if (accounts.length === 0) {
      await this.audit.record({ action: 'password.reset_requested', ip, details: { matched: false } });
      return;
    }
    const expiresAt = new Date(Date.now() + RESET_TOKEN_LIFETIME_MS);
    for (const user of accounts) {
      const token = randomBytes(TOKEN_BYTES).toString('base64url');
      const row = await this.tokens.create({
        userId: user.id,
        tokenHash: hashResetToken(token),
        ip,
        expiresAt,
      });
      await this.audit.record({
        action: 'password.reset_requested',
        userId: user.id,
        ip,
        details: { matched: true, resetId: row.id },
      });
      this.deliver(user, token, row.id);
    }
  }

  /** Whether a link can be used, for the page it opens (looking does not use it: mail scanners open links). */
  async check(token: string, ip: string): Promise<void> {
    await this.usable(token, ip);
  }

  /**
   * Sets the new password through a valid link: the policy is checked first (a refusal keeps the link),
   * then the link is used up and the hash stored in one transaction, and every session of the user ends.
   */
  async complete(token: string, password: string, ip: string): Promise<UserEntity> {
    const userId = await this.usable(token, ip);
    const user = await this.users.findById(userId);
    if (!user) throw new InvalidResetLinkError('unknown');
    const problem = passwordProblem(password, user.username);
    if (problem) throw new WeakPasswordError(problem);
    const consumed = await this.tokens.consume(hashResetToken(token), await this.passwords.hash(password));
    if (!consumed) {
      // Another request used the link between the check and now.
      await this.audit.record({ action: 'password.reset_failed', userId, ip, details: { reason: 'used' } });
      throw new InvalidResetLinkError('used');
    }
    const endedSessions = await this.sessions.endAll(user.id);
    await this.audit.record({
      action: 'password.reset_completed',
      userId: user.id,
      ip,
      details: { endedSessions },
    });
    return user;
  }

  /** The user whose valid link this is; any other link is audited as a failure and refused. */
  private async usable(token: string, ip: string): Promise<string> {
    const { state, userId } = TOKEN_PATTERN.test(token)
      ? await this.tokens.inspect(hashResetToken(token))
      : { state: 'unknown' as const, userId: null };
    if (state === 'valid' && userId) return userId;
    const reason = state === 'valid' ? 'unknown' : state;
    await this.audit.record({ action: 'password.reset_failed', userId, ip, details: { reason } });
    throw new InvalidResetLinkError(reason);
  }

  private deliver(user: UserEntity, token: string, resetId: string): void {
    const mail = resetMail(this.config.http.publicUrl, user.username, token);
    const delivery = this.mailer
      .send({ to: user.email, ...mail })
      .catch((error: Error) => {
        // The id of the link, never the token or the message.
        this.logger.error(`Could not send password reset ${resetId} to user ${user.id}: ${error.message}`);
      })
      .finally(() => this.deliveries.delete(delivery));
    this.deliveries.add(delivery);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.deliveries]);
  }
}
