import { Redis, type RedisOptions } from 'ioredis';

/** A readable explanation for an unreachable Redis, naming the URL (without its password). */
export function describeRedisError(url: string, error: unknown): string {
  let safe = url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    safe = u.toString();
  } catch {
    safe = '(unparseable URL)';
  }
  return (
    `Redis is not reachable at ${safe} (${(error as Error).message}). Start it: ` +
    '`docker compose up -d redis`, or on Debian `redis-server --daemonize yes --bind 127.0.0.1 --port 6379`; ' +
    'or point REDIS_URL at your server.'
  );
}

/**
 * An ioredis client for request-path work (sessions, throttling, readiness): commands fail fast while
 * Redis is down instead of queueing forever, so callers can answer 503; it reconnects by itself.
 */
export function createRedisClient(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...options,
  });
}

/** Resolves once the client is ready, or rejects after `timeoutMs` with the last connection error. */
export async function waitForRedis(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') client.connect().catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    let lastError: Error = new Error('timed out');
    const onError = (e: Error) => {
      lastError = e;
    };
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      client.off('error', onError);
      reject(lastError);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      client.off('error', onError);
      resolve();
    };
    client.once('ready', onReady);
    client.on('error', onError);
  });
}

/** Deletes every key under `prefix` (tests and tooling only). */
export async function deleteKeysWithPrefix(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) deleted += await client.del(...keys);
  } while (cursor !== '0');
  return deleted;
}
