import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { LoginProtectionService } from './login-protection.service.js';
import { MfaService } from './mfa.service.js';
import { PasswordService } from './password.service.js';
import { UserSessionsService } from './user-sessions.service.js';

/**
 * Registration, the login form and logout; exports AuthService (credentials + throttle) to tokens/ and
 * account/, with the password hashing (also to shares/), the throttle and the per-user session index.
 */
@Module({
  imports: [EventsModule],
  controllers: [AuthController],
  providers: [AuthService, PasswordService, LoginProtectionService, UserSessionsService, MfaService],
  exports: [AuthService, PasswordService, LoginProtectionService, UserSessionsService, MfaService],
})
export class AuthModule {}
