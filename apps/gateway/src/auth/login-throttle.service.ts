import { HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { TESS_CONFIG, type TessConfig } from '#common';
import { REDIS } from '../infra/redis.module.js';

export class LoginThrottledException extends HttpException {
  constructor(retryAfterSeconds: number) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: `Too many failed sign-in attempts. Try again in ${Math.ceil(retryAfterSeconds / 60)} minute(s).`,
        retryAfterSeconds,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Counts failed logins per account and per client IP in Redis (shared by all replicas) and refuses
 * attempts over the limit before any password hashing runs: argon2 is deliberately expensive, so an
 * unthrottled login form is a CPU denial-of-service lever. Unknown usernames are counted exactly like
 * known ones, so the limiter reveals nothing about which accounts exist.
 */
@Injectable()
export class LoginThrottleService {
  private readonly perAccount: RateLimiterRedis;
  private readonly perIp: RateLimiterRedis;

  constructor(@Inject(TESS_CONFIG) config: TessConfig, @Inject(REDIS) redis: Redis) {
    const duration = Math.ceil(config.loginThrottle.windowMs / 1000);
    const common = { storeClient: redis, duration, rejectIfRedisNotReady: true };
    this.perAccount = new RateLimiterRedis({
      ...common,
      keyPrefix: `${config.redis.prefix}:login-fail:account`,
      points: config.loginThrottle.maxFailuresPerAccount,
    });
    this.perIp = new RateLimiterRedis({
      ...common,
      keyPrefix: `${config.redis.prefix}:login-fail:ip`,
      points: config.loginThrottle.maxFailuresPerIp,
    });
  }

  private static accountKey(username: string): string {
    return username.trim().toLowerCase();
  }

  /** Throws LoginThrottledException when either counter is exhausted. Call before verifying a password. */
  async assertAllowed(username: string, ip: string): Promise<void> {
    const [account, client] = await Promise.all([
      this.perAccount.get(LoginThrottleService.accountKey(username)),
      this.perIp.get(ip),
    ]);
    const blocked = [
      [account, this.perAccount.points],
      [client, this.perIp.points],
    ].filter(([res, points]) => res && (res as RateLimiterRes).consumedPoints >= (points as number));
    if (blocked.length) {
      const waitMs = Math.max(...blocked.map(([res]) => (res as RateLimiterRes).msBeforeNext));
      throw new LoginThrottledException(Math.max(1, Math.ceil(waitMs / 1000)));
    }
  }

  async recordFailure(username: string, ip: string): Promise<void> {
    await Promise.all([
      this.perAccount.penalty(LoginThrottleService.accountKey(username), 1),
      this.perIp.penalty(ip, 1),
    ]);
  }

  async recordSuccess(username: string): Promise<void> {
    await this.perAccount.delete(LoginThrottleService.accountKey(username));
  }
}
