import { createServer, type Server } from 'node:http';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  type ConfiguredKeyProvider,
  checkReadiness,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  type ReadinessReport,
  readinessStatusCode,
  respondWithMetrics,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
} from '#common';
import { ContentChecks } from '../encrypt/taps/content-checks.js';
import { CryptoWorkerService } from '../jobs/crypto-worker.service.js';

/**
 * The worker's only HTTP surface: `GET /healthz` (process up), `GET /metrics` (Prometheus; with
 * METRICS_TOKEN set it needs `Authorization: Bearer <METRICS_TOKEN>`, probes stay open) and
 * `GET /readyz` (database, Redis queue
 * connection, object store, key provider and, with SCAN_MODE=required, clamd), for orchestrator probes. Set WORKER_HEALTH_PORT=0 to
 * pick a free port (logged).
 */
@Injectable()
export class HealthServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WorkerHealth');
  private server?: Server;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly dataSource: DataSource,
    private readonly worker: CryptoWorkerService,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    private readonly metrics: TessMetrics,
    private readonly checks: ContentChecks,
  ) {}

  readiness(): Promise<ReadinessReport> {
    return checkReadiness({
      database: () => this.dataSource.query('SELECT 1'),
      queue: async () => {
        if (!this.worker.isRunning()) throw new Error('worker is not connected to Redis');
      },
      objectStore: () => this.store.check(),
      keys: () => this.keys.check(),
      // SCAN_MODE=required: no upload is stored without a verdict, so a worker without its scanner is not ready.
      ...(this.checks.clamd ? { scanner: () => this.checks.checkScanner() } : {}),
    });
  }

  /** The port it listens on (WORKER_HEALTH_PORT=0 picks one). */
  port(): number | undefined {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    this.server = createServer((req, res) => {
      const send = (status: number, body: object) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'GET') return send(405, { statusCode: 405, error: 'Method Not Allowed' });
      if (req.url === '/healthz') return send(200, { status: 'ok' });
      if (req.url === '/metrics')
        return void respondWithMetrics(req, res, this.metrics, this.config.metrics.token);
      if (req.url === '/readyz') {
        this.readiness().then(
          (report) => send(readinessStatusCode(report), report),
          () => send(503, { status: 'unavailable' }),
        );
        return;
      }
      send(404, { statusCode: 404, error: 'Not Found' });
    });
    await new Promise<void>((resolve) =>
      this.server!.listen(this.config.worker.healthPort, this.config.http.host, resolve),
    );
    this.logger.log(`Health endpoint on port ${this.port() ?? '?'}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
