import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedisClient, TESS_CONFIG, type TessConfig } from '#common';
import { JobQueue } from './job-queue.js';

const QUEUE_CONNECTION = Symbol('QUEUE_CONNECTION');

/** Provides `JobQueue`, the only producer of jobs in the gateway. */
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
      provide: JobQueue,
      inject: [TESS_CONFIG, QUEUE_CONNECTION],
      useFactory: (config: TessConfig, connection: Redis) => new JobQueue(config, connection),
    },
  ],
  exports: [JobQueue],
})
export class QueueModule implements OnApplicationShutdown {
  constructor(
    private readonly jobs: JobQueue,
    @Inject(QUEUE_CONNECTION) private readonly connection: Redis,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.jobs.close();
    this.connection.disconnect();
  }
}
