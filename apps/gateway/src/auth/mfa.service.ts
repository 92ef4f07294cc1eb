import { Inject, Injectable } from '@nestjs/common';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  KEY_PROVIDER,
  MfaRepository,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { AuthService } from './auth.service.js';
import { LoginProtectionService, ThrottledException } from './login-protection.service.js';
import {
  destroyTotpKey,
  hashRecoveryCode,
  newRecoveryCodes,
  newTotpSecret,
  normalizeRecoveryCode,
  openTotpSecret,
  sealTotpSecret,
  TOTP_CODE,
  totpProvisioning,
  totpTimeStep,
} from './totp.js';

/** The code given for a second factor was wrong, malformed or already used. */
export class InvalidSecondFactorError extends Error {
  constructor(message = 'That code is not valid. Enter the current code from your authenticator app.') {
    super(message);
    this.name = 'InvalidSecondFactorError';
  }
}

/** A TOTP enrolment waiting for its first code: what the security page shows. */
export interface PendingEnrolment {
  secret: string;
  uri: string;
  qrDataUrl: string;
}

export type SecondFactorKind = 'totp' | 'recovery-code';

/** Where a second factor was asked for, recorded in the audit events. */
export type SecondFactorVia = 'sign-in' | 'enrolment' | 'api-token' | 'disable' | 'recovery-codes';

/**
 * TOTP second factor and recovery codes (docs/security.md item 30). Every code check is counted by
 * the login protection (its own account key `mfa:<user id>`, and the client address limit shared with
 * password attempts) before the code is looked at; success gives the points back.
 */
@Injectable()
export class MfaService {
  constructor(
    private readonly mfa: MfaRepository,
    private readonly auth: AuthService,
    private readonly protection: LoginProtectionService,
    private readonly audit: AuditRepository,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** The user's active factors: TOTP on or not, how many passkeys. */
  async factors(userId: string): Promise<{ totp: boolean; passkeys: number }> {
    const [totp, passkeys] = await Promise.all([
      this.mfa.hasActiveTotp(userId),
      this.mfa.countPasskeys(userId),
    ]);
    return { totp, passkeys };
  }

  /** Whether signing in as this user takes a second step (an active TOTP factor or a passkey). */
  async hasSecondFactor(userId: string): Promise<boolean> {
    const { totp, passkeys } = await this.factors(userId);
    return totp || passkeys > 0;
  }

  async status(
    userId: string,
  ): Promise<{ totp: 'off' | 'pending' | 'on'; passkeys: number; recoveryCodesLeft: number }> {
    const row = await this.mfa.findTotp(userId);
    const totp = !row ? 'off' : row.activatedAt ? 'on' : 'pending';
    const passkeys = await this.mfa.countPasskeys(userId);
    const anyFactor = totp === 'on' || passkeys > 0;
    return {
      totp,
      passkeys,
      recoveryCodesLeft: anyFactor ? await this.mfa.remainingRecoveryCodes(userId) : 0,
    };
  }

  /**
   * After a passkey was added: when it is the account's first factor, its recovery codes (shown once),
   * since the recovery codes belong to the account's second factor whichever it is; else null.
   */
  async recoveryCodesForFirstPasskey(userId: string): Promise<string[] | null> {
    const { totp, passkeys } = await this.factors(userId);
    if (totp || passkeys !== 1) return null;
    return this.storeNewRecoveryCodes(userId);
  }

  /** Starts (or restarts) an enrolment with a fresh secret; false when TOTP is already on. */
  async startEnrolment(user: Express.User, ip: string): Promise<boolean> {
    const sealed = await sealTotpSecret(this.keys, user.id, newTotpSecret());
    if (!(await this.mfa.startTotp(user.id, sealed))) return false;
    await this.audit.record({ action: 'mfa.totp_setup_started', userId: user.id, ip });
    return true;
  }

  /** The pending enrolment's secret, URI and QR code, or null when there is none. */
  async pendingEnrolment(user: Express.User): Promise<PendingEnrolment | null> {
    const row = await this.mfa.findTotp(user.id);
    if (!row || row.activatedAt) return null;
    const secret = await openTotpSecret(this.keys, user.id, row);
    // The app lists the entry as "TESS (host): username", so several TESS servers stay apart.
    const issuer = `TESS (${new URL(this.config.http.publicUrl).host})`;
    return { secret, ...(await totpProvisioning(secret, issuer, user.username)) };
  }

  /**
   * Turns the pending factor on with its first code; returns the new recovery codes (shown once).
   * Throws InvalidSecondFactorError or ThrottledException.
   */
  async activate(user: Express.User, code: string, ip: string): Promise<string[]> {
    const row = await this.mfa.findTotp(user.id);
    if (!row || row.activatedAt)
      throw new InvalidSecondFactorError('There is no authenticator set-up to confirm.');
    const attempt = await this.begin(user, ip, 'enrolment');
    const secret = await openTotpSecret(this.keys, user.id, row);
    const step = await totpTimeStep(secret, code.trim());
    if (step === null || !(await this.mfa.claimTimeStep(user.id, step, true))) {
      await this.audit.record({ action: 'mfa.failed', userId: user.id, ip, details: { via: 'enrolment' } });
      throw new InvalidSecondFactorError();
    }
    await this.protection.succeeded(attempt);
    const codes = await this.storeNewRecoveryCodes(user.id);
    await this.audit.record({ action: 'mfa.totp_enabled', userId: user.id, ip, details: { factor: 'totp' } });
    return codes;
  }

  /**
   * Checks a second factor: a current TOTP code (each time step accepted once) or an unused recovery
   * code (then used up). Throws ThrottledException or InvalidSecondFactorError; both are audited.
   */
  async verify(
    user: Express.User,
    input: string,
    ip: string,
    via: SecondFactorVia,
  ): Promise<SecondFactorKind> {
    const attempt = await this.begin(user, ip, via);
    const code = input.replace(/\s/g, '');
    const kind = await this.check(user.id, code);
    if (!kind) {
      await this.audit.record({ action: 'mfa.failed', userId: user.id, ip, details: { via } });
      throw new InvalidSecondFactorError(
        'That code is not valid: enter the current 6-digit code from your authenticator app, or an unused recovery code.',
      );
    }
    await this.protection.succeeded(attempt);
    if (kind === 'recovery-code') {
      const left = await this.mfa.remainingRecoveryCodes(user.id);
      await this.audit.record({
        action: 'mfa.recovery_code_used',
        userId: user.id,
        ip,
        details: { via, left },
      });
    }
    await this.audit.record({ action: 'mfa.succeeded', userId: user.id, ip, details: { via, factor: kind } });
    return kind;
  }

  /**
   * Turns the TOTP factor off: needs the password and a current code (or a recovery code). The recovery
   * codes stay while a passkey is left.
   */
  async disable(user: Express.User, password: string, code: string, ip: string): Promise<void> {
    await this.assertNotLastRequiredFactor(user.id, 'totp');
    await this.auth.confirmPassword(user, password, ip, {
      throttled: 'mfa.throttled',
      failed: 'mfa.totp_disable_failed',
    });
    await this.verify(user, code, ip, 'disable');
    const removed = await this.mfa.removeTotp(user.id);
    if (removed) await destroyTotpKey(this.keys, user.id, removed);
    await this.audit.record({ action: 'mfa.totp_disabled', userId: user.id, ip, details: { via: 'page' } });
  }

  /**
   * Refuses to remove the last factor while MFA_REQUIRED is on (the account would have to enrol again
   * at once); `removing` says which factor would go.
   */
  async assertNotLastRequiredFactor(userId: string, removing: 'totp' | 'passkey'): Promise<void> {
    if (!this.config.mfa.required) return;
    const { totp, passkeys } = await this.factors(userId);
    const left = (totp && removing !== 'totp' ? 1 : 0) + passkeys - (removing === 'passkey' ? 1 : 0);
    if (left <= 0)
      throw new InvalidSecondFactorError(
        'This server requires two-factor sign-in: add another factor (an authenticator app or a passkey) before removing this one.',
      );
  }

  /**
   * A new set of recovery codes (the old set stops working). With TOTP on it takes a current code (or a
   * recovery code); an account whose factors are passkeys only confirms with its password instead.
   */
  async regenerateRecoveryCodes(
    user: Express.User,
    proof: { code: string; password: string },
    ip: string,
  ): Promise<string[]> {
    const { totp, passkeys } = await this.factors(user.id);
    if (!totp && passkeys === 0) throw new InvalidSecondFactorError('Two-factor sign-in is off.');
    if (totp) await this.verify(user, proof.code, ip, 'recovery-codes');
    else
      await this.auth.confirmPassword(user, proof.password, ip, {
        throttled: 'mfa.throttled',
        failed: 'mfa.failed',
        details: { via: 'recovery-codes' },
      });
    const codes = await this.storeNewRecoveryCodes(user.id);
    await this.audit.record({ action: 'mfa.recovery_codes_regenerated', userId: user.id, ip });
    return codes;
  }

  private async check(userId: string, code: string): Promise<SecondFactorKind | null> {
    if (TOTP_CODE.test(code)) {
      const row = await this.mfa.findTotp(userId);
      if (!row?.activatedAt) return null;
      const secret = await openTotpSecret(this.keys, userId, row);
      const last = row.lastTimeStep === null ? null : Number(row.lastTimeStep);
      const step = await totpTimeStep(secret, code, { afterTimeStep: last });
      return step !== null && (await this.mfa.claimTimeStep(userId, step)) ? 'totp' : null;
    }
    const recovery = normalizeRecoveryCode(code);
    if (!recovery) return null;
    return (await this.mfa.useRecoveryCode(userId, hashRecoveryCode(recovery))) ? 'recovery-code' : null;
  }

  private async storeNewRecoveryCodes(userId: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    await this.mfa.replaceRecoveryCodes(userId, codes.map(hashRecoveryCode));
    return codes;
  }

  /** Takes the code attempt's throttle points; a refusal is audited. */
  private async begin(user: Express.User, ip: string, via: SecondFactorVia) {
    try {
      return await this.protection.begin(`mfa:${user.id}`, ip);
    } catch (error) {
      if (error instanceof ThrottledException)
        await this.audit.record({
          action: 'mfa.throttled',
          userId: user.id,
          ip,
          details: { via, limit: error.limit },
        });
      throw error;
    }
  }
}
