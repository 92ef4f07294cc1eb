import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Controller,
  Get,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  NotFoundException,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  Req,
  Res,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { QUEUE_NAMES, respondWithMetrics, TESS_CONFIG, type TessConfig, TessMetrics } from '#common';
import { JobQueue } from '../infra/job-queue.js';

/**
 * Prometheus text exposition on the gateway port, unless METRICS_PORT moves it to its own listener;
 * with METRICS_TOKEN set, a scrape must send it as a bearer token (docs/deployment.md).
 */
@ApiExcludeController()
@Controller()
export class MetricsController {
  constructor(
    private readonly metrics: TessMetrics,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  @Get('metrics')
  async metricsText(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (this.config.metrics.port !== null) throw new NotFoundException('Metrics are served on METRICS_PORT.');
    await respondWithMetrics(req, res, this.metrics, this.config.metrics.token);
  }
}

/** The METRICS_PORT listener: `/metrics` only, nothing of the app (no sessions, no pages, no API). */
@Injectable()
export class MetricsListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private server?: Server;

  constructor(
    private readonly metrics: TessMetrics,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** The port it listens on (METRICS_PORT=0 picks one), undefined without METRICS_PORT. */
  port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationBootstrap(): Promise<void> {
    const { port, token } = this.config.metrics;
    if (port === null) return;
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics')
        return void respondWithMetrics(req, res, this.metrics, token);
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ statusCode: 404, error: 'Not Found', message: 'Only GET /metrics is served here.' }),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.http.host, resolve);
    });
    this.server = server;
    this.logger.log(`Metrics on port ${this.port()}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: TessMetrics,
      inject: [JobQueue],
      useFactory: (jobs: JobQueue) =>
        new TessMetrics('gateway', async () => {
          const [crypto, follow] = await Promise.all([
            jobs.counts(QUEUE_NAMES.crypto),
            jobs.counts(QUEUE_NAMES.follow),
          ]);
          return { [QUEUE_NAMES.crypto]: crypto, [QUEUE_NAMES.follow]: follow };
        }),
    },
    MetricsListener,
  ],
  exports: [TessMetrics],
})
export class MetricsModule {}
