import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { LoginProtectionService } from './login-protection.service.js';
import { PasswordService } from './password.service.js';

/** Registration, the login form and logout; exports AuthService (credentials + throttle) to tokens/
 * and PasswordService (argon2id) to shares/. */
@Module({
  imports: [EventsModule],
  controllers: [AuthController],
  providers: [AuthService, PasswordService, LoginProtectionService],
  exports: [AuthService, PasswordService],
})
export class AuthModule {}
