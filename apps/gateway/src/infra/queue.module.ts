import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  bullPrefix,
  createRedisClient,
  type JobOf,
  QUEUE_NAMES,
  TESS_CONFIG,
  type TessConfig,
} from '#common';

/** Injection token for the producer side of the crypto queue. */
export const CRYPTO_QUEUE = Symbol('CRYPTO_QUEUE');
const QUEUE_CONNECTION = Symbol('QUEUE_CONNECTION');

export type CryptoQueue = Queue<JobOf<'encrypt-file'>, unknown, 'encrypt-file'>;

@Global()
@Module({
  providers: [
    {
      provide: QUEUE_CONNECTION,
      inject: [TESS_CONFIG],
      useFactory: (config: TessConfig): Redis => {
        // Fail fast while Redis is down so uploads answer 503 instead of hanging.
        const connection = createRedisClient(config.redis.url);
        connection.on('error', () => undefined);
        connection.connect().catch(() => undefined);
        return connection;
      },
    },
    {
      provide: CRYPTO_QUEUE,
      inject: [TESS_CONFIG, QUEUE_CONNECTION],
      useFactory: (config: TessConfig, connection: Redis): CryptoQueue => {
        const queue: CryptoQueue = new Queue(QUEUE_NAMES.crypto, {
          connection,
          prefix: bullPrefix(config.redis.prefix),
          defaultJobOptions: {
            attempts: config.worker.jobAttempts,
            backoff: { type: 'exponential', delay: 2_000 },
            removeOnComplete: { age: 24 * 3600, count: 10_000 },
            removeOnFail: { age: 7 * 24 * 3600 },
          },
        });
        queue.on('error', () => undefined);
        return queue;
      },
    },
  ],
  exports: [CRYPTO_QUEUE],
})
export class QueueModule implements OnApplicationShutdown {
  constructor(
    @Inject(CRYPTO_QUEUE) private readonly queue: CryptoQueue,
    @Inject(QUEUE_CONNECTION) private readonly connection: Redis,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.connection.disconnect();
  }
}
