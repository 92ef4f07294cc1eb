import type { LoggerService } from '@nestjs/common';
import type { Redis } from 'ioredis';

/**
 * BullMQ loses jobs when Redis evicts keys, so anything but `noeviction` is an operator error worth
 * shouting about at startup. Returns the policy read, or null when Redis would not say (managed Redis
 * services often disable CONFIG); the worker runs either way.
 */
export async function checkEvictionPolicy(
  redis: Redis,
  logger: Pick<LoggerService, 'error' | 'warn'>,
): Promise<string | null> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      logger.error(
        `Redis maxmemory-policy is "${policy}"; it MUST be "noeviction" or queued jobs can silently disappear. ` +
          'Set it with `CONFIG SET maxmemory-policy noeviction` and in redis.conf.',
      );
    }
    return policy ?? null;
  } catch (error) {
    logger.warn(
      `Could not read Redis maxmemory-policy (${(error as Error).message}); make sure it is "noeviction".`,
    );
    return null;
  }
}
