import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MailModule } from '../mail/mail.module.js';
import { TokensModule } from '../tokens/tokens.module.js';
import { AccountController } from './account.controller.js';
import { AccountApiController } from './account-api.controller.js';
import { MailEnabledGuard, PasswordResetController } from './password-reset.controller.js';
import { PasswordResetService } from './password-reset.service.js';
import { SecurityController } from './security.controller.js';
import { SecurityPage } from './security-page.js';
import { SecurityPasskeysController } from './security-passkeys.controller.js';
import { SecuritySessionsController } from './security-sessions.controller.js';
import { SecurityTokensController } from './security-tokens.controller.js';

/** The account page, password change (page and API), password reset by e-mail, the security page. */
@Module({
  imports: [AuthModule, TokensModule, MailModule],
  controllers: [
    AccountController,
    AccountApiController,
    PasswordResetController,
    SecurityController,
    SecurityTokensController,
    SecuritySessionsController,
    SecurityPasskeysController,
  ],
  providers: [PasswordResetService, MailEnabledGuard, SecurityPage],
})
export class AccountModule {}
