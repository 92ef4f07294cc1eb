import { HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { TESS_CONFIG, type TessConfig } from '#common';
import { REDIS } from '../infra/redis.module.js';

/** Which limit refused an attempt; recorded in the audit event, never shown to the client. */
export type ThrottleLimit =
  | 'pair'
  | 'address'
  | 'account'
  | 'registration'
  | 'reset-email'
  | 'reset-address'
  | 'share-link'
  | 'share-address';

export class ThrottledException extends HttpException {
  constructor(
    readonly limit: ThrottleLimit,
    readonly retryAfterSeconds: number,
    text: string,
  ) {
    // retryAfterSeconds becomes the Retry-After header (apps/gateway/src/http/http-exception.filter.ts).
    super(
      { statusCode: HttpStatus.TOO_MANY_REQUESTS, message: text, retryAfterSeconds },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/** "30 second(s)" or "15 minute(s)", for throttle messages. */
export function waitText(seconds: number): string {
  return seconds < 120 ? `${seconds} second(s)` : `${Math.ceil(seconds / 60)} minute(s)`;
}

export class LoginThrottledException extends ThrottledException {
  constructor(limit: ThrottleLimit, retryAfterSeconds: number) {
    super(
      limit,
      retryAfterSeconds,
      `Too many failed sign-in attempts. Try again in ${waitText(retryAfterSeconds)}.`,
    );
  }
}

export class RegistrationThrottledException extends ThrottledException {
  constructor(retryAfterSeconds: number) {
    super(
      'registration',
      retryAfterSeconds,
      `Too many registrations from your address. Try again in ${waitText(retryAfterSeconds)}.`,
    );
  }
}

export class PasswordResetThrottledException extends ThrottledException {
  constructor(limit: 'reset-email' | 'reset-address', retryAfterSeconds: number) {
    super(
      limit,
      retryAfterSeconds,
      limit === 'reset-email'
        ? `Too many password reset requests for this address. Try again in ${waitText(retryAfterSeconds)}.`
        : `Too many password reset requests from your address. Try again in ${waitText(retryAfterSeconds)}.`,
    );
  }
}

/** The points one sign-in attempt took; handed back by `succeeded`. */
export interface LoginAttempt {
  readonly pairKey: string;
  readonly ip: string;
  readonly accountKey: string;
  /** False when the attempt went through the account's delay gate rather than its free failures. */
  readonly accountFree: boolean;
}

/**
 * The delays (seconds) between attempts at a username past its free failures: Fibonacci from 1 s up to
 * the cap, as rate-limiter-flexible's ExpressBruteFlexible grows them. That class is Express middleware
 * keyed by the request, so the service runs the same steps on RateLimiterRedis itself.
 */
export function growingDelays(maxDelayMs: number): number[] {
  const max = Math.max(1, Math.ceil(maxDelayMs / 1000));
  const delays = [1, 1];
  while (delays.at(-1)! < max) delays.push(delays.at(-1)! + delays.at(-2)!);
  return delays.map((d) => Math.min(d, max));
}

/** Whole seconds until a limiter lets the key try again (at least 1). */
export const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

/** rate-limiter-flexible rejects with a RateLimiterRes when out of points, and with an Error when Redis fails. */
export function rejection(error: unknown): RateLimiterRes {
  if (error instanceof RateLimiterRes) return error;
  throw error;
}

/**
 * Takes one point from each limiter in order; when one refuses, gives back what was taken and throws
 * `refuse(limit, seconds)`. Resolves to the function that gives every point back.
 */
export async function takeEach<L extends string>(
  limits: ReadonlyArray<readonly [L, RateLimiterRedis, string]>,
  refuse: (limit: L, retryAfterSeconds: number) => Error,
): Promise<() => Promise<unknown>> {
  const taken: Array<[RateLimiterRedis, string]> = [];
  const giveBack = () => Promise.all(taken.map(([l, key]) => l.reward(key, 1)));
  for (const [limit, l, key] of limits) {
    try {
      await l.consume(key, 1);
      taken.push([l, key]);
    } catch (error) {
      const res = rejection(error);
      await giveBack();
      throw refuse(limit, retryAfter(res));
    }
  }
  return giveBack;
}

/**
 * Login protection after OWASP's authentication guidance and rate-limiter-flexible's login-endpoint
 * pattern (docs/security.md 10). Every attempt takes its points in Redis *before* argon2 runs, with
 * one atomic INCR per limiter, so a burst cannot slip past a limit that is only checked; success gives
 * the points back. Three limits:
 * - consecutive failures per (username, client address): a success from that address resets it;
 * - failures per client address, across usernames (password spraying);
 * - failures per username from all addresses: a much higher limit, then growing delays (one attempt
 *   per delay) instead of a lockout, so whoever knows a username cannot lock its owner out.
 * Unknown usernames are counted exactly like known ones, so the limits reveal nothing about accounts.
 */
@Injectable()
export class LoginProtectionService {
  private readonly pair: RateLimiterRedis;
  private readonly address: RateLimiterRedis;
  private readonly accountFree: RateLimiterRedis;
  /** One point per delay: whoever takes it may try once while the username is being slowed down. */
  private readonly accountGate: RateLimiterRedis;
  /** How many delayed attempts the username has had; picks the next delay. */
  private readonly accountDelays: RateLimiterRedis;
  private readonly registration: RateLimiterRedis;
  private readonly resetEmail: RateLimiterRedis;
  private readonly resetAddress: RateLimiterRedis;
  private readonly delaysSeconds: number[];

  constructor(@Inject(TESS_CONFIG) config: TessConfig, @Inject(REDIS) redis: Redis) {
    const { loginThrottle: login, registerThrottle: register, passwordReset: reset } = config;
    const windowSeconds = Math.ceil(login.windowMs / 1000);
    const limiter = (name: string, points: number, duration = windowSeconds) =>
      new RateLimiterRedis({
        storeClient: redis,
        rejectIfRedisNotReady: true,
        keyPrefix: `${config.redis.prefix}:throttle:${name}`,
        points,
        duration,
      });
    this.pair = limiter('login-pair', login.maxFailuresPerPair);
    this.address = limiter('login-address', login.maxFailuresPerIp);
    this.accountFree = limiter('login-account', login.maxFailuresPerAccount);
    this.accountGate = limiter('login-account-gate', 1);
    this.accountDelays = limiter('login-account-delays', Number.MAX_SAFE_INTEGER);
    this.registration = limiter('register-address', register.maxPerIp, Math.ceil(register.windowMs / 1000));
    const resetWindow = Math.ceil(reset.windowMs / 1000);
    this.resetEmail = limiter('reset-email', reset.maxPerAddress, resetWindow);
    this.resetAddress = limiter('reset-address', reset.maxPerIp, resetWindow);
    this.delaysSeconds = growingDelays(login.accountMaxDelayMs);
  }

  private static accountKey(username: string): string {
    return username.trim().toLowerCase();
  }

  /**
   * Takes one point from every limit, in order, or throws LoginThrottledException having given back
   * what it took. Call before verifying a password; call `succeeded` when it was right.
   */
  async begin(username: string, ip: string): Promise<LoginAttempt> {
    const accountKey = LoginProtectionService.accountKey(username);
    const pairKey = `${ip}|${accountKey}`;
    const giveBack = await takeEach(
      [
        ['pair', this.pair, pairKey],
        ['address', this.address, ip],
      ] as const,
      (limit, seconds) => new LoginThrottledException(limit, seconds),
    );
    try {
      await this.accountFree.consume(accountKey, 1);
      return { pairKey, ip, accountKey, accountFree: true };
    } catch (error) {
      rejection(error);
    }
    const delays = (await this.accountDelays.get(accountKey))?.consumedPoints ?? 0;
    const delay = this.delaysSeconds[Math.min(delays, this.delaysSeconds.length - 1)]!;
    try {
      await this.accountGate.consume(accountKey, 1, { customDuration: delay });
    } catch (error) {
      const res = rejection(error);
      await giveBack();
      throw new LoginThrottledException('account', retryAfter(res));
    }
    await this.accountDelays.penalty(accountKey, 1);
    return { pairKey, ip, accountKey, accountFree: false };
  }

  /** The password was right: the pair starts over and the address and username get their point back. */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    await Promise.all([
      this.pair.delete(attempt.pairKey),
      this.address.reward(attempt.ip, 1),
      attempt.accountFree ? this.accountFree.reward(attempt.accountKey, 1) : Promise.resolve(),
    ]);
  }

  /** Takes a registration point for the address (each attempt counts: a 409 reveals a taken name). */
  async beginRegistration(ip: string): Promise<void> {
    try {
      await this.registration.consume(ip, 1);
    } catch (error) {
      throw new RegistrationThrottledException(retryAfter(rejection(error)));
    }
  }

  /**
   * Takes a point per client address and per e-mail address asked about (registered or not, so a
   * refusal says nothing about accounts), or throws PasswordResetThrottledException, giving back the
   * client address's point when the e-mail address is the limit that refused.
   */
  async beginPasswordReset(email: string, ip: string): Promise<void> {
    try {
      await this.resetAddress.consume(ip, 1);
    } catch (error) {
      throw new PasswordResetThrottledException('reset-address', retryAfter(rejection(error)));
    }
    try {
      await this.resetEmail.consume(email.trim().toLowerCase(), 1);
    } catch (error) {
      const res = rejection(error);
      await this.resetAddress.reward(ip, 1);
      throw new PasswordResetThrottledException('reset-email', retryAfter(res));
    }
  }
}
