import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { EventsModule } from '../events/events.module.js';
import { TokensController } from '../tokens/tokens.controller.js';
import { TokensService } from '../tokens/tokens.service.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { BearerStrategy } from './bearer.strategy.js';
import { LoginThrottleService } from './login-throttle.service.js';
import { PasswordService } from './password.service.js';

@Module({
  imports: [PassportModule.register({ session: false }), EventsModule],
  controllers: [AuthController, TokensController],
  providers: [AuthService, PasswordService, LoginThrottleService, BearerStrategy, TokensService],
  exports: [AuthService, TokensService],
})
export class AuthModule {}
