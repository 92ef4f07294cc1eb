import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuthModule } from '../auth/auth.module.js';
import { BearerStrategy } from './bearer.strategy.js';
import { TokensController } from './tokens.controller.js';
import { TokensService } from './tokens.service.js';

/**
 * API tokens: issuing them for a username and password (AuthModule's AuthService, so the login
 * throttle is the one the login form uses), listing, revoking, and the `bearer` passport strategy
 * behind ApiAuthGuard.
 */
@Module({
  imports: [PassportModule.register({ session: false }), AuthModule],
  controllers: [TokensController],
  providers: [TokensService, BearerStrategy],
  exports: [TokensService],
})
export class TokensModule {}
