import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { EnrolmentController } from './enrolment.controller.js';
import { LoginProtectionService } from './login-protection.service.js';
import { MfaService } from './mfa.service.js';
import { PasskeysService } from './passkeys.service.js';
import { PasswordService } from './password.service.js';
import { SecondFactorController } from './second-factor.controller.js';
import { SignInCompletion } from './sign-in-completion.js';
import { UserSessionsService } from './user-sessions.service.js';

const SHARED = [
  AuthService,
  PasswordService,
  LoginProtectionService,
  UserSessionsService,
  MfaService,
  PasskeysService,
];

/**
 * Registration, the login form, the second sign-in step (codes, passkeys), the MFA_REQUIRED enrolment
 * and logout; exports AuthService (credentials + throttle) to tokens/ and
 * account/, with the password hashing (also to shares/), the throttle and the per-user session index.
 */
@Module({
  imports: [EventsModule],
  controllers: [AuthController, SecondFactorController, EnrolmentController],
  providers: [...SHARED, SignInCompletion],
  exports: SHARED,
})
export class AuthModule {}
