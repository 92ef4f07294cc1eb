import { Module } from '@nestjs/common';
import { AccessModule } from '../access/access.module.js';
import { DownloadsModule } from '../downloads/downloads.module.js';
import { SharesModule } from '../shares/shares.module.js';
import { BulkFilesService } from './bulk-files.service.js';
import { FilesController } from './files.controller.js';
import { FilesService } from './files.service.js';

@Module({
  imports: [AccessModule, DownloadsModule, SharesModule],
  controllers: [FilesController],
  providers: [FilesService, BulkFilesService],
  exports: [FilesService],
})
export class FilesModule {}
