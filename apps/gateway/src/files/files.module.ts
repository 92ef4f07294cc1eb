import { Module } from '@nestjs/common';
import { VersionRemover } from '#common';
import { AccessModule } from '../access/access.module.js';
import { DownloadsModule } from '../downloads/downloads.module.js';
import { SharesModule } from '../shares/shares.module.js';
import { UploadsModule } from '../uploads/uploads.module.js';
import { BulkFilesService } from './bulk-files.service.js';
import { FilesController } from './files.controller.js';
import { FilesService } from './files.service.js';
import { VersionsController } from './versions.controller.js';
import { VersionsService } from './versions.service.js';

@Module({
  imports: [AccessModule, DownloadsModule, SharesModule, UploadsModule],
  controllers: [FilesController, VersionsController],
  providers: [FilesService, VersionsService, VersionRemover, BulkFilesService],
  exports: [FilesService],
})
export class FilesModule {}
