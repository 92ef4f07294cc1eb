import { Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { TESS_CONFIG, type TessConfig } from '#common';
import { MfaService } from '../auth/mfa.service.js';
import { PasskeysService } from '../auth/passkeys.service.js';
import { UserSessionsService } from '../auth/user-sessions.service.js';
import { csrfToken } from '../http/csrf.js';
import type { FieldErrors } from '../http/validation.js';
import { formatDuration } from '../tokens/token-expiry.js';
import { TokensService } from '../tokens/tokens.service.js';

/** What one action adds to the page it renders (shown once: never stored, never redirected to). */
export interface SecurityPageExtra {
  errors?: FieldErrors;
  recoveryCodes?: string[];
  newToken?: { name: string; token: string; expiresAt: Date | null };
  values?: Record<string, string>;
}

/** The lifetimes the page offers for a new API token (within API_TOKEN_MAX_LIFETIME). */
const TOKEN_LIFETIMES_MS = [7, 30, 90, 365].map((days) => days * 86_400_000);

/** The lifetime choices for a new token: `never` (or the server's cap) and the fixed ones it allows. */
export function tokenLifetimes(maxLifetimeMs: number | null): Array<{ value: string; label: string }> {
  const fixed = TOKEN_LIFETIMES_MS.filter((ms) => maxLifetimeMs === null || ms <= maxLifetimeMs).map(
    (ms) => ({ value: formatDuration(ms), label: `${ms / 86_400_000} days` }),
  );
  const longest =
    maxLifetimeMs === null
      ? { value: 'never', label: 'Never expires' }
      : { value: 'never', label: `The longest allowed (${formatDuration(maxLifetimeMs)})` };
  return [...fixed, longest];
}

/**
 * The account security page (docs/security.md item 30): second factors (authenticator app, passkeys),
 * recovery codes, API tokens and sessions on one page, rendered by the controllers of each part after their action.
 */
@Injectable()
export class SecurityPage {
  constructor(
    private readonly mfa: MfaService,
    private readonly passkeys: PasskeysService,
    private readonly tokens: TokensService,
    private readonly sessions: UserSessionsService,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** The expiries a new token may have here. */
  lifetimes(): Array<{ value: string; label: string }> {
    return tokenLifetimes(this.config.apiTokens.maxLifetimeMs);
  }

  async render(req: Request, res: Response, status: number, extra: SecurityPageExtra = {}): Promise<void> {
    const user = req.user!;
    const state = await this.mfa.status(user.id);
    const enrolment = state.totp === 'pending' ? await this.mfa.pendingEnrolment(user) : null;
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    const codes = extra.recoveryCodes;
    // The page shows the secret, recovery codes or a new token: never stored by a cache.
    res.setHeader('Cache-Control', 'private, no-store');
    res.status(status).render('pages/security', {
      title: 'Security',
      user,
      totpOn: state.totp === 'on',
      recoveryCodesLeft: state.recoveryCodesLeft,
      enrolment,
      recoveryCodes: codes,
      recoveryCodesFile: codes
        ? `data:text/plain;charset=utf-8,${encodeURIComponent(`TESS recovery codes for ${user.username}\n\n${codes.join('\n')}\n`)}`
        : undefined,
      passkeys: await this.passkeys.list(user.id),
      scripts: ['/assets/simplewebauthn/index.umd.min.js', '/static/js/passkeys.js'],
      modules: ['/static/js/security.js'],
      tokens: await this.tokens.list(user.id),
      tokenLifetimes: this.lifetimes(),
      newToken: extra.newToken,
      sessions: await this.sessions.describe(user.id, req.sessionID),
      values: extra.values ?? {},
      flash,
      errors: extra.errors ?? {},
      csrfToken: csrfToken(req),
    });
  }
}
