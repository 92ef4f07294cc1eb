import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { bullPrefix, createRedisClient, defaultJobOptions, QUEUE_NAMES, type TessConfig } from '#common';

/**
 * A producer handle on the crypto queue for the worker's own chores (the reconciler's re-enqueues, the
 * version retention schedule): its own Redis connection, connecting in the background, errors swallowed
 * (the callers report their failures); `close()` ends both.
 */
export function openProducerQueue(config: TessConfig): { queue: Queue; close(): Promise<void> } {
  const connection: Redis = createRedisClient(config.redis.url);
  connection.on('error', () => undefined);
  connection.connect().catch(() => undefined);
  const queue = new Queue(QUEUE_NAMES.crypto, {
    connection,
    prefix: bullPrefix(config.redis.prefix),
    defaultJobOptions: defaultJobOptions(config),
  });
  queue.on('error', () => undefined);
  return {
    queue,
    async close() {
      await queue.close().catch(() => undefined);
      connection.disconnect();
    },
  };
}
