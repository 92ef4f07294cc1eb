import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module.js';
import { TempSweeperService } from './temp-sweeper.service.js';
import { UploadsController } from './uploads.controller.js';
import { UploadsService } from './uploads.service.js';

@Module({
  imports: [EventsModule],
  controllers: [UploadsController],
  providers: [UploadsService, TempSweeperService],
  exports: [UploadsService],
})
export class UploadsModule {}
