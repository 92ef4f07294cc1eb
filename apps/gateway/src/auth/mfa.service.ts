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

  /** Whether signing in as this user takes a second step. */
  hasSecondFactor(userId: string): Promise<boolean> {
    return this.mfa.hasActiveTotp(userId);
  }

  async status(userId: string): Promise<{ totp: 'off' | 'pending' | 'on'; recoveryCodesLeft: number }> {
    const row = await this.mfa.findTotp(userId);
    const totp = !row ? 'off' : row.activatedAt ? 'on' : 'pending';
    return { totp, recoveryCodesLeft: totp === 'on' ? await this.mfa.remainingRecoveryCodes(userId) : 0 };
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

  /** Turns the second factor off: needs the password and a current code (or a recovery code). */
  async disable(user: Express.User, password: string, code: string, ip: string): Promise<void> {
    await this.auth.confirmPassword(user, password, ip, {
      throttled: 'mfa.throttled',
      failed: 'mfa.totp_disable_failed',
    });
    await this.verify(user, code, ip, 'disable');
    const removed = await this.mfa.removeAll(user.id);
    if (removed) await destroyTotpKey(this.keys, user.id, removed);
    await this.audit.record({ action: 'mfa.totp_disabled', userId: user.id, ip, details: { via: 'page' } });
  }

  /** A new set of recovery codes (the old set stops working); needs a current code. */
  async regenerateRecoveryCodes(user: Express.User, code: string, ip: string): Promise<string[]> {
    if (!(await this.mfa.hasActiveTotp(user.id)))
      throw new InvalidSecondFactorError('Two-factor sign-in is off.');
    await this.verify(user, code, ip, 'recovery-codes');
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
