import { Injectable, Logger, OnModuleInit, UnauthorizedException } from '@nestjs/common';
import { AuditRepository, type UserEntity, UserRepository } from '#common';
import { LoginThrottleService } from './login-throttle.service.js';
import { PasswordService, passwordProblem } from './password.service.js';

export class WeakPasswordError extends Error {}

/** The one message for every credential failure: no hint whether the user exists. */
export const INVALID_CREDENTIALS = 'Invalid username or password.';

@Injectable()
export class AuthService implements OnModuleInit {
  private readonly logger = new Logger(AuthService.name);
  /** Verified against for unknown usernames so both paths cost one argon2 verification. */
  private dummyHash = '';

  constructor(
    private readonly users: UserRepository,
    private readonly passwords: PasswordService,
    private readonly throttle: LoginThrottleService,
    private readonly audit: AuditRepository,
  ) {}

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.passwords.hash('tess-dummy-password-for-timing');
  }

  async register(
    input: { username: string; email: string; password: string },
    ip: string,
  ): Promise<UserEntity> {
    const problem = passwordProblem(input.password, input.username);
    if (problem) throw new WeakPasswordError(problem);
    const user = await this.users.create({
      username: input.username,
      email: input.email,
      passwordHash: await this.passwords.hash(input.password),
    });
    await this.audit.record({ action: 'user.registered', userId: user.id, ip });
    return user;
  }

  /**
   * Checks credentials. Throttling is checked first (before argon2 runs); unknown users and wrong
   * passwords produce the same exception and the same work. Rehashes on success when the configured
   * argon2 parameters have risen since the hash was made.
   */
  async authenticate(username: string, password: string, ip: string): Promise<UserEntity> {
    await this.throttle.assertAllowed(username, ip);
    const user = await this.users.findByUsername(username);
    const ok = await this.passwords.verify(user?.passwordHash ?? this.dummyHash, password);
    if (!user || !ok) {
      await this.throttle.recordFailure(username, ip);
      await this.audit.record({ action: 'login.failed', userId: user?.id ?? null, ip });
      throw new UnauthorizedException(INVALID_CREDENTIALS);
    }
    await this.throttle.recordSuccess(username);
    if (this.passwords.needsRehash(user.passwordHash)) {
      user.passwordHash = await this.passwords.hash(password);
      await this.users.updatePasswordHash(user.id, user.passwordHash);
      this.logger.log(`Rehashed the password of user ${user.id} with the current argon2 parameters`);
    }
    return user;
  }
}
