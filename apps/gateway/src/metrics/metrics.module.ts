import { Controller, Get, Global, Header, Module } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { TessMetrics } from '#common';
import { CRYPTO_QUEUE, type CryptoQueue } from '../infra/queue.module.js';

/** Prometheus text exposition. Meant for the cluster network only (the Ingress does not route it). */
@ApiExcludeController()
@Controller()
export class MetricsController {
  constructor(private readonly metrics: TessMetrics) {}

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: TessMetrics,
      inject: [CRYPTO_QUEUE],
      useFactory: (queue: CryptoQueue) =>
        new TessMetrics('gateway', () =>
          queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'),
        ),
    },
  ],
  exports: [TessMetrics],
})
export class MetricsModule {}
