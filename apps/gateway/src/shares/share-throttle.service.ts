import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { TESS_CONFIG, type TessConfig } from '#common';
import {
  rejection,
  retryAfter,
  ThrottledException,
  takeEach,
  waitText,
} from '../auth/login-protection.service.js';
import { REDIS } from '../infra/redis.module.js';

export class ShareThrottledException extends ThrottledException {
  constructor(limit: 'link' | 'address', retryAfterSeconds: number) {
    const wait = waitText(retryAfterSeconds);
    super(
      limit === 'link' ? 'share-link' : 'share-address',
      retryAfterSeconds,
      limit === 'link'
        ? `Too many wrong passwords for this link. Try again in ${wait}.`
        : `Too many failed attempts from your address. Try again in ${wait}.`,
    );
  }
}

/** The points one password attempt took; handed back when the password was right. */
export interface SharePasswordAttempt {
  readonly shareId: string;
  readonly ip: string;
}

/**
 * Share-link throttles in Redis, after the login protection (docs/security.md 10 and 31f): a password
 * attempt takes a point per link (SHARE_MAX_FAILURES_PER_LINK, against guessing from many addresses)
 * and per client address (SHARE_MAX_FAILURES_PER_IP) *before* argon2 runs, one atomic INCR each, and a
 * right password gives them back. An unknown token costs the address a point too, so the address
 * limit also bounds token guessing; an address over it gets 429 for every link until the window ends.
 * The address is `req.ip`: Express `trust proxy` (TRUST_PROXY), never a raw X-Forwarded-For.
 */
@Injectable()
export class ShareThrottleService {
  private readonly link: RateLimiterRedis;
  private readonly address: RateLimiterRedis;
  private readonly maxPerIp: number;

  constructor(@Inject(TESS_CONFIG) config: TessConfig, @Inject(REDIS) redis: Redis) {
    const { shares } = config;
    const limiter = (name: string, points: number) =>
      new RateLimiterRedis({
        storeClient: redis,
        rejectIfRedisNotReady: true,
        keyPrefix: `${config.redis.prefix}:throttle:${name}`,
        points,
        duration: Math.ceil(shares.windowMs / 1000),
      });
    this.link = limiter('share-link', shares.maxFailuresPerLink);
    this.address = limiter('share-address', shares.maxFailuresPerIp);
    this.maxPerIp = shares.maxFailuresPerIp;
  }

  /** Throws ShareThrottledException when the address has used up its failures (checked on every lookup). */
  async checkAddress(ip: string): Promise<void> {
    const res = await this.address.get(ip);
    if (res && res.consumedPoints >= this.maxPerIp)
      throw new ShareThrottledException('address', retryAfter(res));
  }

  /** An unknown token was asked for from `ip`: one failure for the address. */
  async unknownToken(ip: string): Promise<void> {
    await this.address.consume(ip, 1).catch(rejection);
  }

  /** Takes the attempt's points, or throws ShareThrottledException having given back what it took. */
  async beginPassword(shareId: string, ip: string): Promise<SharePasswordAttempt> {
    await takeEach(
      [
        ['link', this.link, shareId],
        ['address', this.address, ip],
      ] as const,
      (limit, seconds) => new ShareThrottledException(limit, seconds),
    );
    return { shareId, ip };
  }

  /** The password was right: the attempt did not count. */
  async passwordRight(attempt: SharePasswordAttempt): Promise<void> {
    await Promise.all([this.link.reward(attempt.shareId, 1), this.address.reward(attempt.ip, 1)]);
  }
}
