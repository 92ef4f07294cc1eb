import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { Logger } from 'pino';
import { DatabaseModule, StorageModule, type TessConfig, TessConfigModule } from '#common';
import { AccountModule } from './account/account.module.js';
import { AdminModule } from './admin/admin.module.js';
import { AuthModule } from './auth/auth.module.js';
import { EventsModule } from './events/events.module.js';
import { FilesModule } from './files/files.module.js';
import { FoldersModule } from './folders/folders.module.js';
import { HealthController } from './health/health.controller.js';
import { ActivityController } from './home/activity.controller.js';
import { HomeController } from './home/home.controller.js';
import { CsrfGuard } from './http/csrf.js';
import { HttpExceptionFilter } from './http/http-exception.filter.js';
import { requestLoggerModule } from './http/request-logging.js';
import { QueueModule } from './infra/queue.module.js';
import { RedisModule } from './infra/redis.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { SharesModule } from './shares/shares.module.js';
import { TokensModule } from './tokens/tokens.module.js';
import { UploadsModule } from './uploads/uploads.module.js';
import { UsageModule } from './usage/usage.module.js';

@Module({})
export class AppModule {
  static forRoot(config: TessConfig, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TessConfigModule.forRoot(config),
        requestLoggerModule(logger),
        DatabaseModule.forRoot(),
        RedisModule,
        QueueModule,
        MetricsModule,
        StorageModule,
        EventsModule,
        AuthModule,
        TokensModule,
        UploadsModule,
        FilesModule,
        FoldersModule,
        JobsModule,
        UsageModule,
        SharesModule,
        AccountModule,
        AdminModule,
      ],
      controllers: [HealthController, HomeController, ActivityController],
      providers: [
        { provide: APP_GUARD, useClass: CsrfGuard },
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
      ],
    };
  }
}
