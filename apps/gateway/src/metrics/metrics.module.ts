import { Controller, Get, Global, Header, Module } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { TessMetrics } from '#common';
import { JobQueue } from '../infra/job-queue.js';

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
      inject: [JobQueue],
      useFactory: (jobs: JobQueue) => new TessMetrics('gateway', () => jobs.counts()),
    },
  ],
  exports: [TessMetrics],
})
export class MetricsModule {}
