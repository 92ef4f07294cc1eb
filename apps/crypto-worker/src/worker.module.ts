import { type DynamicModule, Module } from '@nestjs/common';
import { DatabaseModule, StorageModule, type TessConfig, TessConfigModule, TessMetrics } from '#common';
import { CryptoWorkerService } from './encrypt/crypto-worker.service.js';
import { EncryptFileService } from './encrypt/encrypt-file.service.js';
import { FileLocks } from './encrypt/file-lock.js';
import { HashPool } from './encrypt/hash-pool.js';
import { HealthServer } from './health/health.server.js';

/** The crypto worker: an application context with no public HTTP server (only a health port). */
@Module({})
export class WorkerModule {
  static forRoot(config: TessConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [TessConfigModule.forRoot(config), DatabaseModule.forRoot(), StorageModule],
      providers: [
        { provide: TessMetrics, useFactory: () => new TessMetrics('crypto-worker') },
        EncryptFileService,
        FileLocks,
        { provide: HashPool, useFactory: () => new HashPool() },
        CryptoWorkerService,
        HealthServer,
      ],
    };
  }
}
