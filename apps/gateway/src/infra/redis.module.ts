import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedisClient, TESS_CONFIG, type TessConfig } from '#common';

/** Injection token for the gateway's shared request-path Redis client. */
export const REDIS = Symbol('REDIS');

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [TESS_CONFIG],
      useFactory: (config: TessConfig) => {
        const client = createRedisClient(config.redis.url);
        // Connection errors are reported by /readyz and by the requests that need Redis.
        client.on('error', () => undefined);
        client.connect().catch(() => undefined);
        return client;
      },
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    this.redis.disconnect();
  }
}
