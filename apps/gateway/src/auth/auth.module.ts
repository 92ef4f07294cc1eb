import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { InvitesService } from './invites.service.js';
import { LoginProtectionService } from './login-protection.service.js';
import { MfaService } from './mfa.service.js';
import { PasswordService } from './password.service.js';
import { UserSessionsService } from './user-sessions.service.js';

const SERVICES = [
  AuthService,
  PasswordService,
  LoginProtectionService,
  UserSessionsService,
  MfaService,
  InvitesService,
];

/**
 * Registration (under REGISTRATION and its invites), the login form and logout; exports AuthService
 * (credentials + throttle) to tokens/ and account/, with the password hashing (also to shares/), the
 * throttle, the per-user session index and the invites (to admin/).
 */
@Module({
  imports: [EventsModule],
  controllers: [AuthController],
  providers: SERVICES,
  exports: SERVICES,
})
export class AuthModule {}
