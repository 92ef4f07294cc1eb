import { Module } from '@nestjs/common';
import { AccessModule } from '../access/access.module.js';
import { FilesModule } from '../files/files.module.js';
import { FoldersController } from './folders.controller.js';
import { FoldersService } from './folders.service.js';

@Module({
  imports: [AccessModule, FilesModule],
  controllers: [FoldersController],
  providers: [FoldersService],
})
export class FoldersModule {}
