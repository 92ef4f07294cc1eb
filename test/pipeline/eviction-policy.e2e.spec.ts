import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkEvictionPolicy } from '../../apps/crypto-worker/src/jobs/eviction-policy.js';
import { type RedisServer, startRedisServer } from '../support/redis-server.js';

/**
 * docs/security.md item 24 against a real Redis: this test's own redis-server (the shared one must keep
 * its noeviction policy), started with the policy a careless operator might leave in place.
 */
let server: RedisServer | undefined;

function recordingLogger() {
  const lines: Array<{ level: 'error' | 'warn'; message: string }> = [];
  return {
    lines,
    error: (message: unknown) => lines.push({ level: 'error', message: String(message) }),
    warn: (message: unknown) => lines.push({ level: 'warn', message: String(message) }),
  };
}

afterEach(async () => {
  await server?.dispose();
  server = undefined;
});

describe('the worker checks Redis eviction at startup (docs/security.md item 24)', () => {
  it('reports an evicting policy as an error naming the fix, and stays quiet once it is noeviction', async () => {
    server = await startRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      const logger = recordingLogger();
      expect(await checkEvictionPolicy(redis, logger)).toBe('allkeys-lru');
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]!.level).toBe('error');
      expect(logger.lines[0]!.message).toContain('"allkeys-lru"');
      expect(logger.lines[0]!.message).toContain('CONFIG SET maxmemory-policy noeviction');

      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      const quiet = recordingLogger();
      expect(await checkEvictionPolicy(redis, quiet)).toBe('noeviction');
      expect(quiet.lines).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('warns, without failing, when Redis does not allow CONFIG (managed services)', async () => {
    server = await startRedisServer(['--rename-command', 'CONFIG', '""']);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      const logger = recordingLogger();
      expect(await checkEvictionPolicy(redis, logger)).toBeNull();
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]!.level).toBe('warn');
      expect(logger.lines[0]!.message).toContain('make sure it is "noeviction"');
    } finally {
      redis.disconnect();
    }
  });
});
