import { type DynamicModule, Module } from '@nestjs/common';
import {
  DatabaseModule,
  StorageModule,
  type TessConfig,
  TessConfigModule,
  TessMetrics,
  VersionRemover,
} from '#common';
import { DeleteUserHandler } from './accounts/delete-user.handler.js';
import { AuditAnchorService } from './audit/audit-anchor.service.js';
import { EncryptFileHandler } from './encrypt/encrypt-file.handler.js';
import { FollowFileHandler } from './encrypt/follow-file.handler.js';
import { ContentChecks } from './encrypt/taps/content-checks.js';
import { HashPool } from './encrypt/taps/hash-pool.js';
import { HealthServer } from './health/health.server.js';
import { CryptoWorkerService } from './jobs/crypto-worker.service.js';
import { JOB_HANDLERS, type JobHandlers } from './jobs/job-handler.js';
import { JobLocks } from './jobs/job-locks.js';
import { JobReconciler } from './reconcile/job-reconciler.service.js';
import { PruneVersionsHandler } from './versions/prune-versions.handler.js';

/** The crypto worker: an application context with no public HTTP server (only a health port). */
@Module({})
export class WorkerModule {
  static forRoot(config: TessConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [TessConfigModule.forRoot(config), DatabaseModule.forRoot(), StorageModule],
      providers: [
        { provide: TessMetrics, useFactory: () => new TessMetrics('crypto-worker') },
        EncryptFileHandler,
        FollowFileHandler,
        VersionRemover,
        PruneVersionsHandler,
        DeleteUserHandler,
        {
          provide: JOB_HANDLERS,
          inject: [EncryptFileHandler, FollowFileHandler, PruneVersionsHandler, DeleteUserHandler],
          useFactory: (
            encryptFile: EncryptFileHandler,
            followFile: FollowFileHandler,
            pruneVersions: PruneVersionsHandler,
            deleteUser: DeleteUserHandler,
          ): JobHandlers => ({
            'encrypt-file': encryptFile,
            'follow-file': followFile,
            'prune-versions': pruneVersions,
            'delete-user': deleteUser,
          }),
        },
        JobLocks,
        { provide: HashPool, useFactory: () => new HashPool() },
        ContentChecks,
        CryptoWorkerService,
        JobReconciler,
        AuditAnchorService,
        HealthServer,
      ],
    };
  }
}
