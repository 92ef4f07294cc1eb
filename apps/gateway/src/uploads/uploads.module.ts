import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { AccessModule } from '../access/access.module.js';
import { EventsModule } from '../events/events.module.js';
import { TempSweeperService } from './temp-sweeper.service.js';
import { TusController } from './tus/tus.controller.js';
import { TusService } from './tus/tus.service.js';
import { TusResumableMiddleware } from './tus/tus-resumable.middleware.js';
import { UploadsController } from './uploads.controller.js';
import { UploadsService } from './uploads.service.js';

@Module({
  imports: [EventsModule, AccessModule],
  controllers: [UploadsController, TusController],
  providers: [UploadsService, TusService, TempSweeperService],
  exports: [UploadsService, TusService],
})
export class UploadsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(TusResumableMiddleware).forRoutes(TusController);
  }
}
