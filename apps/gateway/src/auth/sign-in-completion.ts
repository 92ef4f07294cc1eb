import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuditRepository } from '#common';
import { UserSessionsService } from './user-sessions.service.js';

/** How the second step (or the enrolment of a first factor) passed. */
export type SecondStep = 'totp' | 'recovery-code' | 'passkey' | 'enrolled-totp' | 'enrolled-passkey';

/**
 * The end of a sign-in that took a second step: passport's login regenerates the session (the pending
 * id dies, the mark with it), the new session is indexed, and `login.succeeded` names the step.
 */
@Injectable()
export class SignInCompletion {
  constructor(
    private readonly sessions: UserSessionsService,
    private readonly audit: AuditRepository,
  ) {}

  async complete(req: Request, user: Express.User, step: SecondStep): Promise<void> {
    await this.sessions.start(req, user);
    await this.audit.record({
      action: 'login.succeeded',
      userId: user.id,
      ip: req.ip,
      details: { secondFactor: step },
    });
    if (step === 'recovery-code') {
      req.session.flash = {
        kind: 'info',
        text: 'You signed in with a recovery code, which is now used up. Make new ones on the Security page if few are left.',
      };
    }
  }
}

export const PENDING_EXPIRED = 'The sign-in took too long. Sign in again.';

/** No second step is waiting (never began, or its 5 minutes are over): start again at /login. */
export function pendingExpired(req: Request, res: Response): void {
  if (req.session?.mfaPending) {
    delete req.session.mfaPending;
    req.session.flash = { kind: 'info', text: PENDING_EXPIRED };
  }
  res.redirect(303, '/login');
}
