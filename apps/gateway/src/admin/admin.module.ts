import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AccessModule } from '../access/access.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { EventsModule } from '../events/events.module.js';
import { TokensModule } from '../tokens/tokens.module.js';
import { AdminController } from './admin.controller.js';
import { AdminApiGuard, AdminGate, AdminPageGuard } from './admin.gate.js';
import { AdminService } from './admin.service.js';
import { AdminApiController } from './admin-api.controller.js';
import { AdminAudit } from './admin-audit.js';

/**
 * The admin area (docs/security.md item 37): pages under /admin, the API under /api/v1/admin, and the
 * gate the queue dashboard (queue-board.ts, mounted by app.factory.ts) shares with them.
 */
@Module({
  imports: [
    PassportModule.register({ session: false }),
    AccessModule,
    AuthModule,
    EventsModule,
    TokensModule,
  ],
  controllers: [AdminController, AdminApiController],
  providers: [AdminGate, AdminPageGuard, AdminApiGuard, AdminService, AdminAudit],
  exports: [AdminGate],
})
export class AdminModule {}
