import { Injectable, Logger, OnModuleInit, UnauthorizedException } from '@nestjs/common';
import {
  type AuditAction,
  AuditRepository,
  DuplicateUsernameError,
  type UserEntity,
  UserRepository,
} from '#common';
import { LoginProtectionService, ThrottledException } from './login-protection.service.js';
import { PasswordService, passwordProblem } from './password.service.js';
import { UserSessionsService } from './user-sessions.service.js';

export class WeakPasswordError extends Error {}

/** The current password given to change it was wrong. */
export class WrongPasswordError extends Error {
  constructor() {
    super('Your current password is not correct.');
    this.name = 'WrongPasswordError';
  }
}

/** Where a password change came from, recorded in its audit event. */
export type PasswordChangeVia = 'page' | 'api';

/** The one message for every credential failure: no hint whether the user exists. */
export const INVALID_CREDENTIALS = 'Invalid username or password.';

/** A right password for an account an administrator disabled. */
export const ACCOUNT_DISABLED = 'This account is disabled. Ask your administrator to enable it again.';

@Injectable()
export class AuthService implements OnModuleInit {
  private readonly logger = new Logger(AuthService.name);
  /** Verified against for unknown usernames so both paths cost one argon2 verification. */
  private dummyHash = '';

  constructor(
    private readonly users: UserRepository,
    private readonly passwords: PasswordService,
    private readonly protection: LoginProtectionService,
    private readonly audit: AuditRepository,
    private readonly sessions: UserSessionsService,
  ) {}

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.passwords.hash('tess-dummy-password-for-timing');
  }

  /**
   * Throttled per client address; a taken name is refused before argon2 runs (the unique index still
   * decides a race between two registrations of the same name).
   */
  async register(
    input: { username: string; email: string; password: string },
    ip: string,
    details: { inviteId?: string } = {},
  ): Promise<UserEntity> {
    await this.throttled(() => this.protection.beginRegistration(ip), ip);
    const problem = passwordProblem(input.password, input.username);
    if (problem) throw new WeakPasswordError(problem);
    if (await this.users.findByUsername(input.username)) throw new DuplicateUsernameError();
    const user = await this.users.create({
      username: input.username,
      email: input.email,
      passwordHash: await this.passwords.hash(input.password),
    });
    await this.audit.record({ action: 'user.registered', userId: user.id, ip, details });
    return user;
  }

  /**
   * Checks credentials for the form and the token API. The attempt is counted before argon2 runs;
   * unknown users and wrong passwords produce the same exception and the same work. Rehashes on
   * success when the configured argon2 parameters have risen since the hash was made.
   */
  async authenticate(username: string, password: string, ip: string): Promise<UserEntity> {
    const attempt = await this.throttled(() => this.protection.begin(username, ip), ip);
    const user = await this.users.findByUsername(username);
    const ok = await this.passwords.verify(user?.passwordHash ?? this.dummyHash, password);
    if (!user || !ok) {
      await this.audit.record({ action: 'login.failed', userId: user?.id ?? null, ip });
      throw new UnauthorizedException(INVALID_CREDENTIALS);
    }
    await this.protection.succeeded(attempt);
    // Told only to someone who knows the password: a disabled account is not a secret from its owner.
    if (user.status !== 'active') {
      await this.audit.record({
        action: 'login.failed',
        userId: user.id,
        ip,
        details: { reason: 'disabled' },
      });
      throw new UnauthorizedException(ACCOUNT_DISABLED);
    }
    if (this.passwords.needsRehash(user.passwordHash)) {
      user.passwordHash = await this.passwords.hash(password);
      await this.users.updatePasswordHash(user.id, user.passwordHash);
      this.logger.log(`Rehashed the password of user ${user.id} with the current argon2 parameters`);
    }
    return user;
  }

  /**
   * Changes a signed-in user's password (docs/security.md item 11a). The new password passes the
   * registration policy first (so a refusal says nothing about the current password); the current one
   * is then verified under the sign-in throttle, whose limits a wrong one counts against exactly like a
   * wrong sign-in. The new hash is stored with the current argon2 parameters, the user's outstanding
   * reset links die with the old password, and every session but `keepSessionId` is ended. API tokens
   * are kept: they are separate credentials the user manages (and revokes) on their own, and scripts
   * using them should not break because a password was rotated. Returns how many sessions were ended.
   */
  async changePassword(
    user: Express.User,
    input: { currentPassword: string; newPassword: string },
    ip: string,
    via: PasswordChangeVia,
    keepSessionId?: string,
  ): Promise<number> {
    const problem = passwordProblem(input.newPassword, user.username);
    if (problem) throw new WeakPasswordError(problem);
    await this.confirmPassword(user, input.currentPassword, ip, {
      throttled: 'password.change_throttled',
      failed: 'password.change_failed',
      details: { via },
    });
    await this.users.changePassword(user.id, await this.passwords.hash(input.newPassword));
    const endedSessions = await this.sessions.endAll(user.id, keepSessionId);
    await this.audit.record({
      action: 'password.changed',
      userId: user.id,
      ip,
      details: { via, endedSessions },
    });
    return endedSessions;
  }

  /**
   * Confirms a signed-in user's password for a sensitive change (a password change, turning off the
   * second factor) under the sign-in throttle, whose limits a wrong one counts against exactly like a
   * wrong sign-in; refusals are audited with the given actions. Throws WrongPasswordError.
   */
  async confirmPassword(
    user: Express.User,
    password: string,
    ip: string,
    audit: { throttled: AuditAction; failed: AuditAction; details?: Record<string, string> },
  ): Promise<void> {
    const attempt = await this.throttled(
      () => this.protection.begin(user.username, ip),
      ip,
      audit.throttled,
      user.id,
    );
    const stored = await this.users.findById(user.id);
    const ok = await this.passwords.verify(stored?.passwordHash ?? this.dummyHash, password);
    if (!stored || !ok) {
      await this.audit.record({ action: audit.failed, userId: user.id, ip, details: audit.details ?? {} });
      throw new WrongPasswordError();
    }
    await this.protection.succeeded(attempt);
  }

  /**
   * Runs a throttle step; a refusal is audited (which limit, never the username) and rethrown. Sign-in
   * and registration refusals are anonymous; `action` and `userId` name others (a password change).
   */
  private async throttled<T>(
    step: () => Promise<T>,
    ip: string,
    action?: AuditAction,
    userId?: string,
  ): Promise<T> {
    try {
      return await step();
    } catch (error) {
      if (error instanceof ThrottledException) {
        const refused = action ?? (error.limit === 'registration' ? 'register.throttled' : 'login.throttled');
        await this.audit.record({ action: refused, userId, ip, details: { limit: error.limit } });
      }
      throw error;
    }
  }
}
