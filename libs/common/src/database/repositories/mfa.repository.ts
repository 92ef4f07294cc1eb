import { Injectable } from '@nestjs/common';
import { DataSource, IsNull, type Repository } from 'typeorm';
import { MfaPasskeyEntity, MfaRecoveryCodeEntity, MfaTotpEntity } from '../entities/mfa.entity.js';

/** A TOTP secret as stored: encrypted under a data key that the key provider wrapped. */
export interface SealedTotpSecret {
  keyRef: string;
  wrappedKey: Buffer;
  secretCiphertext: Buffer;
}

/** A passkey about to be stored, as the WebAuthn registration verified it. */
export interface NewPasskey {
  userId: string;
  credentialId: string;
  publicKey: Buffer;
  counter: number;
  transports: string[];
  name: string;
  deviceType: string;
  backedUp: boolean;
}

/** The most passkeys one account may have. */
export const MAX_PASSKEYS = 20;

/**
 * The second factors (docs/security.md item 30). Every "use once" step (a TOTP time step, a recovery
 * code) is one conditional UPDATE, so two concurrent requests with the same code cannot both pass.
 */
@Injectable()
export class MfaRepository {
  private readonly totp: Repository<MfaTotpEntity>;
  private readonly codes: Repository<MfaRecoveryCodeEntity>;
  private readonly passkeys: Repository<MfaPasskeyEntity>;

  constructor(private readonly dataSource: DataSource) {
    this.totp = dataSource.getRepository(MfaTotpEntity);
    this.codes = dataSource.getRepository(MfaRecoveryCodeEntity);
    this.passkeys = dataSource.getRepository(MfaPasskeyEntity);
  }

  findTotp(userId: string): Promise<MfaTotpEntity | null> {
    return this.totp.findOneBy({ userId });
  }

  /** Whether the user has an active (activated) TOTP factor. */
  async hasActiveTotp(userId: string): Promise<boolean> {
    const row = await this.totp.findOneBy({ userId });
    return row?.activatedAt != null;
  }

  /** Starts (or restarts) an enrolment: the sealed secret, not active yet. Refuses over an active one. */
  async startTotp(userId: string, sealed: SealedTotpSecret): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `INSERT INTO mfa_totp (user_id, key_ref, wrapped_key, secret_ciphertext)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE
         SET key_ref = EXCLUDED.key_ref, wrapped_key = EXCLUDED.wrapped_key,
             secret_ciphertext = EXCLUDED.secret_ciphertext, last_time_step = NULL,
             created_at = now(), activated_at = NULL
         WHERE mfa_totp.activated_at IS NULL
       RETURNING user_id`,
      [userId, sealed.keyRef, sealed.wrappedKey, sealed.secretCiphertext],
    );
    return rows.length === 1;
  }

  /**
   * Records `timeStep` as used when it is later than the last one (and, with `activate`, turns the
   * pending factor on). False when the step was already used: a replayed code.
   */
  async claimTimeStep(userId: string, timeStep: number, activate = false): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH claimed AS (
         UPDATE mfa_totp SET last_time_step = $2${activate ? ', activated_at = now()' : ''}
          WHERE user_id = $1 AND (last_time_step IS NULL OR last_time_step < $2)
            AND activated_at IS ${activate ? '' : 'NOT '}NULL
          RETURNING user_id)
       SELECT user_id FROM claimed`,
      [userId, timeStep],
    );
    return rows.length === 1;
  }

  /**
   * Removes every factor of the user (TOTP, passkeys) and the recovery codes: the operator's reset.
   * Returns the TOTP row removed (its data key is to be destroyed) and how many passkeys went.
   */
  async removeAll(userId: string): Promise<{ totp: MfaTotpEntity | null; passkeys: number }> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOneBy(MfaTotpEntity, { userId });
      await manager.delete(MfaRecoveryCodeEntity, { userId });
      await manager.delete(MfaTotpEntity, { userId });
      const passkeys = (await manager.delete(MfaPasskeyEntity, { userId })).affected ?? 0;
      return { totp: row, passkeys };
    });
  }

  /**
   * Removes the user's TOTP factor; the recovery codes go too when no passkey is left (they belong to
   * the account's second factor, not to one device). Returns the row removed, if there was one.
   */
  async removeTotp(userId: string): Promise<MfaTotpEntity | null> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOneBy(MfaTotpEntity, { userId });
      await manager.delete(MfaTotpEntity, { userId });
      if ((await manager.countBy(MfaPasskeyEntity, { userId })) === 0)
        await manager.delete(MfaRecoveryCodeEntity, { userId });
      return row;
    });
  }

  listPasskeys(userId: string): Promise<MfaPasskeyEntity[]> {
    return this.passkeys.find({ where: { userId }, order: { createdAt: 'ASC' } });
  }

  countPasskeys(userId: string): Promise<number> {
    return this.passkeys.countBy({ userId });
  }

  findPasskeyByCredential(userId: string, credentialId: string): Promise<MfaPasskeyEntity | null> {
    return this.passkeys.findOneBy({ userId, credentialId });
  }

  /**
   * Stores a newly registered passkey, at most MAX_PASSKEYS per user; null when the user has that many
   * or the credential is already registered (to anyone).
   */
  async addPasskey(passkey: NewPasskey): Promise<MfaPasskeyEntity | null> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      `INSERT INTO mfa_passkeys
         (user_id, credential_id, public_key, counter, transports, name, device_type, backed_up)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8
        WHERE (SELECT count(*) FROM mfa_passkeys WHERE user_id = $1) < $9
       ON CONFLICT (credential_id) DO NOTHING
       RETURNING id`,
      [
        passkey.userId,
        passkey.credentialId,
        passkey.publicKey,
        passkey.counter,
        passkey.transports.join(','),
        passkey.name,
        passkey.deviceType,
        passkey.backedUp,
        MAX_PASSKEYS,
      ],
    );
    return rows[0] ? this.passkeys.findOneBy({ id: rows[0].id }) : null;
  }

  /**
   * Records a sign-in with the passkey: the new counter and the time. Conditional on the counter read
   * before the check, so two concurrent uses of one assertion cannot both pass.
   */
  async usePasskey(id: string, previousCounter: string, newCounter: number): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH used AS (
         UPDATE mfa_passkeys SET counter = $3, last_used_at = now()
          WHERE id = $1 AND counter = $2
          RETURNING id)
       SELECT id FROM used`,
      [id, previousCounter, newCounter],
    );
    return rows.length === 1;
  }

  async renamePasskey(userId: string, id: string, name: string): Promise<boolean> {
    return ((await this.passkeys.update({ id, userId }, { name })).affected ?? 0) === 1;
  }

  /**
   * Removes one of the user's passkeys; the recovery codes go too when it was the last factor.
   * Returns the removed passkey's name, or null when the user has no such passkey.
   */
  async removePasskey(userId: string, id: string): Promise<string | null> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOneBy(MfaPasskeyEntity, { id, userId });
      if (!row) return null;
      await manager.delete(MfaPasskeyEntity, { id, userId });
      const totp = await manager.findOneBy(MfaTotpEntity, { userId });
      if (!totp?.activatedAt && (await manager.countBy(MfaPasskeyEntity, { userId })) === 0)
        await manager.delete(MfaRecoveryCodeEntity, { userId });
      return row.name;
    });
  }

  /** Replaces the user's recovery codes (by their hashes). */
  async replaceRecoveryCodes(userId: string, codeHashes: string[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.delete(MfaRecoveryCodeEntity, { userId });
      await manager.insert(
        MfaRecoveryCodeEntity,
        codeHashes.map((codeHash) => ({ userId, codeHash })),
      );
    });
  }

  /** Uses the unused recovery code with this hash; false when there is none. */
  async useRecoveryCode(userId: string, codeHash: string): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH used AS (
         UPDATE mfa_recovery_codes SET used_at = now()
          WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
          RETURNING id)
       SELECT id FROM used`,
      [userId, codeHash],
    );
    return rows.length === 1;
  }

  /** How many unused recovery codes the user has left. */
  remainingRecoveryCodes(userId: string): Promise<number> {
    return this.codes.countBy({ userId, usedAt: IsNull() });
  }
}
