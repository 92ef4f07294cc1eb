import { Module } from '@nestjs/common';
import { TempSweeperService } from './temp-sweeper.service.js';
import { UploadsController } from './uploads.controller.js';
import { UploadsService } from './uploads.service.js';

@Module({
  controllers: [UploadsController],
  providers: [UploadsService, TempSweeperService],
  exports: [UploadsService],
})
export class UploadsModule {}
