import { Module } from '@nestjs/common';
import { AccessModule } from '../access/access.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { DownloadsModule } from '../downloads/downloads.module.js';
import { Clock } from './clock.js';
import { ShareLinkController } from './share-link.controller.js';
import { ShareThrottleService } from './share-throttle.service.js';
import { SharesController } from './shares.controller.js';
import { SharesService } from './shares.service.js';

/** Share links: the owner's API (/api/v1/.../shares) and the public link (/s/:token). */
@Module({
  imports: [AccessModule, AuthModule, DownloadsModule],
  controllers: [SharesController, ShareLinkController],
  providers: [SharesService, ShareThrottleService, Clock],
  exports: [SharesService],
})
export class SharesModule {}
